"""What the command lines of the packages share: logging options, one log format, clear errors.

Every command line of the distribution (``python -m katcp_compat``,
``python -m katcp_compat.cmd``, the SAMP hub, the messaging and sockproto
examples) offers ``-v``/``--verbose`` and ``--log-level``, logs in
:data:`LOG_FORMAT`, and reports a network failure as one line without a
traceback, through :func:`run`. :class:`HelpFormatter` shows every option's
default; :func:`configured_logging` sets up logging for a ``main()`` that may
run inside another program; :func:`reported_here` keeps a failure that is
both logged and raised from being shown twice; :func:`connect_error` says why
a client could not connect; :func:`interrupt_on_sigterm` makes SIGTERM stop a
command as Ctrl-C does.
"""

import argparse
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import textwrap
import threading
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Type

__all__ = ["LOG_FORMAT", "LOG_LEVELS", "CommandError", "HelpFormatter", "add_logging_arguments",
           "command_name", "configure_logging", "configured_logging", "connect_error", "describe_error",
           "interrupt_on_sigterm", "reported_here", "run", "EXIT_ERROR", "EXIT_INTERRUPTED"]

#: The one log format of every command line.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Level names ``--log-level`` accepts.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Exit status of a command that failed with a reported error.
EXIT_ERROR = 1
#: Exit status after Ctrl-C.
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A failure a command reports as one line, without a traceback."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help with every option's default; line breaks of descriptions and epilogs kept.

    ``(default: ...)`` is added to each option that takes a value and whose
    default is not None or ``""``; a help text that already names its
    default (it contains ``%(default)`` or ``default:``) is left alone, as
    are flags. Each line of a description or epilog is wrapped on its own.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "default:" in text or action.nargs == 0 \
                or action.default in (None, "", argparse.SUPPRESS):
            return text
        return super()._get_help_string(action) or text

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(textwrap.fill(line, width, initial_indent=indent,
                                        subsequent_indent=indent) if line.strip() else ""
                         for line in text.splitlines())


def command_name(module_form: str) -> str:
    """The name the command was started under, for its usage line and error lines.

    An installed script is named by its file (``katcp-compat-server``);
    ``python -m pkg`` (``sys.argv[0]`` is then a ``.py`` file) gets
    ``module_form``.

    Parameters
    ----------
    module_form : str
        The name when run as a module, e.g. ``"python -m katcp_compat"``.
    """
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not script or script.endswith((".py", ".pyc")) or script in ("-c", "-m", "__main__"):
        return module_form
    return script


def add_logging_arguments(parser: argparse.ArgumentParser, default_level: str = "WARNING",
                          level_flags: Sequence[str] = ("--log-level",),
                          levels: Sequence[str] = LOG_LEVELS) -> "argparse._ArgumentGroup":
    """Add ``-v``/``--verbose`` and ``--log-level`` to ``parser``, in a group "logging".

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to extend.
    default_level : str
        The level without ``-v`` or ``--log-level``.
    level_flags : sequence of str
        The option strings of the level option (a command that mimics an
        original may add the original's short form, e.g. ``("-L", "--log-level")``).
    levels : sequence of str
        The level names accepted (names of :mod:`logging` levels; a command
        that mimics an original may accept its extra ones, e.g. ``WARN``).

    Returns
    -------
    group
        The "logging" argument group, for a command's own logging options.
    """
    group = parser.add_argument_group("logging")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="log more: -v for INFO, -vv for DEBUG (default: neither, the log level rules)")
    group.add_argument(*level_flags, dest="log_level", metavar="LEVEL", type=str.upper,
                       choices=levels, default=default_level,
                       help="log level, one of %s (default: %%(default)s)" % ", ".join(levels))
    return group


def configure_logging(args: argparse.Namespace, stream: Any = None,
                      handler: Optional[logging.Handler] = None,
                      logger: Optional[logging.Logger] = None) -> None:
    """Set up logging from the options :func:`add_logging_arguments` added.

    ``-v`` lowers the level to INFO, ``-vv`` to DEBUG, whatever ``--log-level`` says.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.
    stream : file, optional
        Where records go (default: ``sys.stderr``), unless ``handler`` is given.
    handler : logging.Handler, optional
        The handler to use; it gets :data:`LOG_FORMAT`.
    logger : logging.Logger, optional
        The logger to configure. The root logger (the default) has its
        handlers replaced by ``handler``; another logger (a package's, when
        a function may run inside someone else's program) gets it added.
    """
    level = getattr(logging, args.log_level)
    verbose = getattr(args, "verbose", 0)
    if verbose:
        level = min(level, logging.INFO if verbose == 1 else logging.DEBUG)
    if handler is None:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    target = logger if logger is not None else logging.getLogger()
    if target is logging.getLogger():
        target.handlers[:] = [handler]
    else:
        target.addHandler(handler)
    target.setLevel(level)


@contextlib.contextmanager
def configured_logging(args: argparse.Namespace, stream: Any = None) -> Iterator[None]:
    """:func:`configure_logging` for the length of a ``with`` block, then the root logger as before.

    A command's ``main()`` that may be called from other Python code (or a
    test) uses this rather than :func:`configure_logging`, so that it leaves
    the caller's logging as it found it.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(args, stream)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class _DropErrors(logging.Filter):
    """Drop records that carry one of ``types`` as their exception."""

    def __init__(self, types: Tuple[Type[BaseException], ...]) -> None:
        super().__init__()
        self._types = types

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, self._types)


@contextlib.contextmanager
def reported_here(*types: Type[BaseException],
                  logger: Optional[logging.Logger] = None) -> Iterator[None]:
    """Within the block, drop log records carrying an exception of ``types``.

    For a call that both logs a failure (with its traceback) and raises it,
    when the command reports the raised error itself as one line: the user
    sees the failure once. At DEBUG level nothing is dropped.

    Parameters
    ----------
    *types : exception classes
        The errors the command reports itself (e.g. ``OSError``).
    logger : logging.Logger, optional
        The logger whose handlers print the records (default: the root
        logger; see :func:`configure_logging`).
    """
    target = logger if logger is not None else logging.getLogger()
    if target.isEnabledFor(logging.DEBUG):
        yield
        return
    drop = _DropErrors(types)
    handlers = target.handlers[:]
    for handler in handlers:
        handler.addFilter(drop)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(drop)


def connect_error(address: Tuple[str, int], timeout: float) -> Optional[OSError]:
    """Try one TCP connection to ``address``; return why it failed, or None.

    For a command whose client could not connect and that wants to say why
    (unknown host, refused, timed out). A connection that succeeds is closed
    at once.

    Parameters
    ----------
    address : (host, port)
        Where to connect.
    timeout : float
        Seconds for the attempt.

    Returns
    -------
    error : OSError or None
        The failure (``socket.gaierror`` for an unknown host), or None if the
        connection succeeded.
    """
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as exc:
        return exc
    return None


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM stops the command as Ctrl-C does (KeyboardInterrupt).

    A command started from a background job ignores SIGINT; SIGTERM is what
    service managers and ``kill`` send. Outside the main thread nothing
    changes. The previous handler comes back after the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def describe_error(exc: BaseException, address: Any = None) -> str:
    """One line that says what failed, for a user.

    Parameters
    ----------
    exc : BaseException
        The failure.
    address : (host, port) or str, optional
        What the command tried to reach or to listen on.
    """
    where = ""
    if isinstance(address, tuple) and len(address) >= 2:
        where = "%s:%s" % (address[0], address[1])
    elif address:
        where = str(address)
    if isinstance(exc, CommandError):
        return str(exc)
    if isinstance(exc, socket.gaierror):
        host = address[0] if isinstance(address, tuple) else where
        return "unknown host %r (%s)" % (host, exc.strerror or exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused by %s: is the server running?" % (where or "the server")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer from %s: timed out" % (where or "the server")
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return "address %s is already in use" % (where or "")
    if isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL:
        return "cannot use address %s: not an address of this computer" % (where or "")
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
        return "not allowed to use %s (%s)" % (where or "that address", exc.strerror)
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
        return "%s%s" % (where + ": " if where else "", detail)
    return "%s: %s" % (type(exc).__name__, exc)


def run(main: Callable[[], Optional[int]], prog: Optional[str] = None,
        address: Callable[[], Any] = lambda: None) -> int:
    """Run a command's ``main()`` and turn failures into one line on stderr and an exit status.

    Parameters
    ----------
    main : callable
        ``main() -> exit status or None``.
    prog : str, optional
        The command's name, put before the error line.
    address : callable
        ``address() -> (host, port)`` of what the command tried to reach or
        listen on, for the error line.

    Returns
    -------
    status : int
        ``main()``'s status (0 for None), :data:`EXIT_ERROR` after a reported
        failure, :data:`EXIT_INTERRUPTED` after Ctrl-C.
    """
    name = prog or "error"
    try:
        status = main()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (OSError, CommandError) as exc:
        print("%s: %s" % (name, describe_error(exc, address())), file=sys.stderr)
        return EXIT_ERROR
    return 0 if status is None else status
