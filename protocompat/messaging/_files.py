"""Files on a messaging connection: which paths a peer may name, and streaming to and from disk.

No sockets here, only files: :class:`FileAccess` (the confinement policy),
:class:`FileFrame` (an outgoing frame whose content is read from a file while
it is sent; the file is opened only then), :class:`FileSink` (received file
content written to a temporary file next to its destination, renamed into
place once complete) and :class:`DiscardSink` (content consumed and dropped).
"""

import logging
import os
import stat
import tempfile
from typing import Any, Callable, Optional, Tuple, Union

from ..netutil import Producer

logger = logging.getLogger(__name__)

#: ``progress(done_bytes, total_bytes)``, called as a file's content moves.
Progress = Callable[[int, int], Any]

#: The direction of an access named by the peer: it reads the file (a pull).
READ = "read"
#: The direction of an access named by the peer: it writes the file (a push).
WRITE = "write"

# Flags of a file opened for sending: never blocks on a FIFO or a device, not inherited.
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_BINARY", 0))


def report(progress: Progress, done: int, total: int, path: str) -> None:
    """Call ``progress(done, total)``; an exception it raises is logged, and the transfer goes on."""
    try:
        progress(done, total)
    except Exception:
        logger.exception("Progress callback %r of the transfer of %s raised", progress, path)


def check_path(path: Any) -> str:
    """Return ``path`` if it is a string naming a path; raise TypeError or ValueError otherwise."""
    if not isinstance(path, str):
        raise TypeError("a path must be a string, not %s: %r" % (type(path).__name__, path))
    if "\0" in path:
        raise ValueError("a path must not contain a NUL character: %r" % (path,))
    return path


class FileAccess:
    """Which paths the peer may name for reading (its pulls) and writing (its pushes).

    The default, ``FileAccess()``, confines nothing, as clever-show does: the
    peer may read and write any path the process can. Paths the application
    itself names (``send_file``'s source, ``get_file``'s destination) are not
    checked.

    Parameters
    ----------
    root : str or os.PathLike, optional
        A directory the paths must lie in once symbolic links and ``..`` are
        resolved. Relative paths are resolved against the current working
        directory, as :func:`open` resolves them, so a path names the same
        file with or without confinement.
    allow : callable, optional
        ``allow(path, direction)``, called with the resolved absolute path and
        ``"read"`` or ``"write"`` (after the ``root`` check); a false return,
        or an exception, refuses the access.

    Attributes
    ----------
    root : str or None
        The resolved root directory.
    allow : callable or None
        The approving callable.
    """

    def __init__(self, root: Union[str, "os.PathLike[str]", None] = None,
                 allow: Optional[Callable[[str, str], Any]] = None) -> None:
        self.root = None if root is None else os.path.realpath(os.fspath(root))
        self.allow = allow

    def __repr__(self) -> str:
        return "%s(root=%r, allow=%r)" % (type(self).__name__, self.root, self.allow)

    @property
    def confined(self) -> bool:
        """True if a root or an approving callable is set."""
        return self.root is not None or self.allow is not None

    def check(self, path: Any, direction: str) -> str:
        """Return the path to open for a peer's access, or raise why it is refused.

        Parameters
        ----------
        path : object
            The path as the peer sent it.
        direction : str
            ``"read"`` or ``"write"``.

        Returns
        -------
        str
            ``path`` itself when nothing is confined, else its resolved form.

        Raises
        ------
        TypeError, ValueError
            If ``path`` is not a string, or contains a NUL character.
        PermissionError
            If the path lies outside :attr:`root` or :attr:`allow` refuses it.
        """
        checked = check_path(path)
        if not self.confined:
            return checked
        resolved = os.path.realpath(checked)
        if self.root is not None and os.path.commonpath([self.root, resolved]) != self.root:
            raise PermissionError("%s of %r refused: outside %s" % (direction, path, self.root))
        if self.allow is not None:
            try:
                allowed = self.allow(resolved, direction)
            except Exception as error:
                raise PermissionError("%s of %r refused: the file access check raised %r"
                                      % (direction, path, error)) from error
            if not allowed:
                raise PermissionError("%s of %r refused by the file access check" % (direction, path))
        return resolved


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def regular_file_size(path: str) -> int:
    """The size of the regular file at ``path``; OSError if there is none."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise IsADirectoryError(path) if stat.S_ISDIR(info.st_mode) else \
            OSError("%s is not a regular file" % path)
    return info.st_size


def _open_regular(path: str) -> Tuple[Any, int]:
    """Open a regular file for reading without ever blocking; return it and its size."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError("%s is not a regular file" % path)
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


class DiscardSink:
    """Consumes received content and keeps nothing; :meth:`commit` raises ``error``, if any."""

    def __init__(self, error: Optional[BaseException] = None) -> None:
        self.error = error

    def write(self, data: bytes) -> None:
        pass

    def finish(self) -> "DiscardSink":
        return self

    def commit(self) -> None:
        raise self.error or OSError("the content was not kept")

    def discard(self) -> None:
        pass


class FileSink:
    """Receives file content into a temporary file next to its destination.

    ``progress(received, total)`` is called after each write, with the bytes
    received so far and ``total`` (the content length); see :func:`report`.
    """

    def __init__(self, filepath: str, total: int = 0, progress: Optional[Progress] = None) -> None:
        self.path = filepath
        self.total = total
        self.received = 0
        self._progress = progress
        self.error: Optional[BaseException] = None
        self._tmp: Optional[str] = None
        self._file: Any = None
        try:
            directory = os.path.dirname(os.path.abspath(filepath))
            fd, self._tmp = tempfile.mkstemp(prefix="." + os.path.basename(filepath) + ".",
                                             suffix=".part", dir=directory)
            self._file = os.fdopen(fd, "wb")
        except OSError as error:
            self.error = error

    def write(self, data: bytes) -> None:
        if self._file is None:
            return
        try:
            self._file.write(data)
        except OSError as error:
            self.error = error
            self.discard()
            return
        self.received += len(data)
        if self._progress is not None:
            report(self._progress, self.received, self.total, self.path)

    def finish(self) -> "FileSink":
        if self.total == 0 and self._progress is not None and self._file is not None:
            report(self._progress, 0, 0, self.path)
        if self._file is not None:
            try:
                self._file.close()
            except OSError as error:
                self.error = error
                self.discard()
            self._file = None
        return self

    def commit(self) -> None:
        """Move the received file into place (mode as ``open(path, "wb")`` gives)."""
        filepath = self.path
        if self.error is not None or self._tmp is None:
            raise self.error or OSError("file content was not stored")
        try:
            mode = os.stat(filepath).st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_umask()
        try:
            os.chmod(self._tmp, mode)
            os.replace(self._tmp, filepath)
        except OSError:
            self.discard()
            raise
        self._tmp = None

    def discard(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
            self._tmp = None


class FileFrame(Producer):
    """An outgoing frame whose binary content is read from a file while it is sent.

    A :class:`~protocompat.netutil.Producer`: the stream calls :meth:`read`
    when the frame's turn to be sent comes, and only then is the file opened
    (a queued frame holds no descriptor); the header is built from the size
    the file has then. :meth:`close` closes the file and rewinds the frame,
    so that it can be queued again and sent whole.

    Parameters
    ----------
    path : str
        The file.
    header_for : callable
        ``header_for(size)`` returns the frame's protoheader and header.
    size : int
        The file's size when the frame was queued.
    progress : callable, optional
        ``progress(sent, size)`` after each piece of content is read for
        sending, with the bytes read so far (handed to the socket, at most
        one piece ahead of what it has sent); see :func:`report`.
    """

    def __init__(self, path: str, header_for: Callable[[int], bytes], size: int,
                 progress: Optional[Progress] = None) -> None:
        self.name = path
        self._progress = progress
        self._header_for = header_for
        self.size = size
        self.header = header_for(size)
        self._file: Any = None
        self._started = False
        self._left = size
        self._release: Optional[Callable[[], Any]] = None

    def track(self, release: Callable[[], Any]) -> None:
        """Call ``release()`` at the next :meth:`close` (the frame has left the queue)."""
        self._release = release

    def read(self, size: int) -> bytes:
        """The next bytes of the frame, at most about ``size``; ``b""`` once it is complete.

        The first call opens the file and returns the header with the first
        content. A file that cannot be opened then is logged and the frame
        is empty (nothing is sent).

        Raises
        ------
        OSError
            If the file cannot be read, or has shrunk since its header was built.
        """
        if not self._started:
            self._started = True
            try:
                self._open()
            except OSError as error:
                logger.warning("File {} can not be opened due error: {}".format(self.name, error))
                return b""
            if self.size == 0 and self._progress is not None:
                report(self._progress, 0, 0, self.name)
            return self.header + self._content(max(0, size - len(self.header)))
        return self._content(size)

    def _open(self) -> None:
        self._file, size = _open_regular(self.name)
        if size != self.size:
            self.size = size
            self.header = self._header_for(size)
        self._left = size

    def _content(self, size: int) -> bytes:
        if self._left == 0 or size == 0:
            return b""
        data = self._file.read(min(size, self._left))
        if not data:
            raise OSError("file %s shrank while being sent (%d bytes missing)" % (self.name, self._left))
        self._left -= len(data)
        if self._progress is not None:
            report(self._progress, self.size - self._left, self.size, self.name)
        return data  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the file; the frame would be sent again from its start (reopening the file)."""
        fileobj, self._file = self._file, None
        self._started = False
        self._left = self.size
        if fileobj is not None:
            try:
                fileobj.close()
            except OSError:
                pass
        release, self._release = self._release, None
        if release is not None:
            release()

    def __len__(self) -> int:
        return len(self.header) + self.size

    def __getitem__(self, index: Union[int, slice]) -> Union[int, bytes]:
        """Bytes of the frame by index or slice, as if it were the ``bytes`` of a whole frame.

        Legacy code may look at a queued frame (``data[:256]`` in a log
        line); the file is read without moving the position used for sending.
        """
        positions = range(len(self))[index]  # IndexError / TypeError as for bytes
        if isinstance(positions, int):
            return self._read_range(positions, positions + 1)[0]
        if not positions:
            return b""
        low, high = min(positions[0], positions[-1]), max(positions[0], positions[-1]) + 1
        data = self._read_range(low, high)
        if positions.step == 1:
            return data
        return bytes(data[i - low] for i in positions)

    def _read_range(self, low: int, high: int) -> bytes:
        header_length = len(self.header)
        parts = [self.header[low:high]]
        start, stop = max(low - header_length, 0), max(high - header_length, 0)
        if stop > start:
            parts.append(self._pread(start, stop - start))
        return b"".join(parts)

    def _pread(self, offset: int, length: int) -> bytes:
        if self._file is not None:
            try:
                return os.pread(self._file.fileno(), length, offset)
            except (AttributeError, OSError, ValueError):  # no pread on this platform
                pass
        try:
            fileobj, _ = _open_regular(self.name)
        except OSError:
            return b""
        with fileobj:
            fileobj.seek(offset)
            return fileobj.read(length)


def file_frame(path: str, header_for: Callable[[int], bytes],
               progress: Optional[Progress] = None) -> FileFrame:
    """A frame that will send the regular file at ``path``; OSError if there is none."""
    return FileFrame(path, header_for, regular_file_size(path), progress)
