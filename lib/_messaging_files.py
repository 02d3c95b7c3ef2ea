"""Files on a messaging connection: streamed from disk when sent, to disk when received.

Part of ``messaging``; no sockets here, only files.
"""

import importlib
import os
import tempfile
from typing import Any, Callable, Optional, Union


# Siblings are imported the way this module was (``lib.X`` or, with lib/ on sys.path, ``X``);
# the codec module, which needs no sibling, holds the helper that does it.
_import_sibling = importlib.import_module(
    (__package__ + "." if __package__ else "") + "_messaging_codec")._import_sibling


_FrameError = _import_sibling("_messaging_codec")._FrameError

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


class _FileSink:
    """Receives file content into a temporary file next to its destination."""

    def __init__(self, filepath: str) -> None:
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

    def finish(self) -> "_FileSink":
        if self._file is not None:
            try:
                self._file.close()
            except OSError as error:
                self.error = error
                self.discard()
            self._file = None
        return self

    def commit(self, filepath: str) -> None:
        """Move the received file to ``filepath`` (mode as ``open(path, "wb")`` gives)."""
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


class _FileFrame:
    """An outgoing frame whose binary content is read from a file while sending."""

    def __init__(self, header: bytes, fileobj: Any, size: int, name: str) -> None:
        self.header = header
        self.size = size
        self.name = name
        self._file = fileobj
        self._sent_header = False
        self._left = size

    def next_chunk(self, size: int) -> Optional[bytes]:
        """The next bytes of the frame, or None when it is complete."""
        if not self._sent_header:
            self._sent_header = True
            return self.header
        if self._left == 0:
            return None
        data = self._file.read(min(size, self._left))
        if not data:
            raise _FrameError("file %s shrank while being sent (%d bytes missing)"
                              % (self.name, self._left))
        self._left -= len(data)
        return data

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
        try:
            return os.pread(self._file.fileno(), length, offset)
        except (AttributeError, OSError, ValueError):  # no pread, or the file is closed
            pass
        try:
            with open(self.name, "rb") as again:
                again.seek(offset)
                return again.read(length)
        except OSError:
            return b""

    def rewind(self) -> None:
        self._file.seek(0)
        self._sent_header = False
        self._left = self.size

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass


def _open_file_frame(filepath: str, headers_for: Callable[[int], bytes]) -> _FileFrame:
    """Open ``filepath`` and build a frame streaming it; raises OSError."""
    fileobj = open(filepath, "rb")
    try:
        size = os.fstat(fileobj.fileno()).st_size
        return _FileFrame(headers_for(size), fileobj, size, filepath)
    except BaseException:
        fileobj.close()
        raise
