"""What the command lines of the packages share: logging options, one log format, clear errors.

Every command line of the distribution (``python -m katcp_compat``,
``python -m katcp_compat.cmd``, the SAMP hub, the messaging and sockproto
examples) offers ``-v``/``--verbose`` and ``--log-level``, logs in
:data:`LOG_FORMAT`, and reports a network failure as one line without a
traceback, through :func:`run`.
"""

import argparse
import errno
import logging
import socket
import sys
from typing import Any, Callable, Optional, Sequence

__all__ = ["LOG_FORMAT", "LOG_LEVELS", "CommandError", "add_logging_arguments",
           "configure_logging", "describe_error", "run", "EXIT_ERROR", "EXIT_INTERRUPTED"]

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


def add_logging_arguments(parser: argparse.ArgumentParser, default_level: str = "WARNING",
                          level_flags: Sequence[str] = ("--log-level",)) -> None:
    """Add ``-v``/``--verbose`` and ``--log-level`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to extend.
    default_level : str
        The level without ``-v`` or ``--log-level``.
    level_flags : sequence of str
        The option strings of the level option (a command that mimics an
        original may add the original's short form, e.g. ``("-L", "--log-level")``).
    """
    group = parser.add_argument_group("logging")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="log more: -v for INFO, -vv for DEBUG")
    group.add_argument(*level_flags, dest="log_level", metavar="LEVEL", type=str.upper,
                       choices=LOG_LEVELS, default=default_level,
                       help="log level, one of %s (default: %%(default)s)" % ", ".join(LOG_LEVELS))


def configure_logging(args: argparse.Namespace, stream: Any = None,
                      handler: Optional[logging.Handler] = None) -> None:
    """Set up the root logger from the options :func:`add_logging_arguments` added.

    ``-v`` lowers the level to INFO, ``-vv`` to DEBUG, whatever ``--log-level`` says.
    """
    level = getattr(logging, args.log_level)
    verbose = getattr(args, "verbose", 0)
    if verbose:
        level = min(level, logging.INFO if verbose == 1 else logging.DEBUG)
    if handler is None:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


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
