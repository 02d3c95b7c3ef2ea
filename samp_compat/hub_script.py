"""The ``samp-compat-hub`` command: run a SAMP hub (options as astropy's ``samp_hub``).

``python -m samp_compat`` is the same command; ``--demo`` runs a
self-contained tour instead of a hub.
"""
import argparse
import logging
import sys
from typing import List, Optional

from protocompat.cli import (HelpFormatter, add_logging_arguments, command_name,
                             configure_logging, describe_error, interrupt_on_sigterm,
                             reported_here)

from ._demo import demo
from .hub import SAMPHubServer

__all__ = ["hub_script"]

#: Level names ``-L`` accepts (astropy's ``samp_hub`` list).
LOG_LEVELS = ("CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET")
#: Exit status when the hub cannot start.
EXIT_ERROR = 1

#: The package logger that ``-L``, ``-v`` and ``-O`` configure (``hub_script.log`` as in the
#: original).
log = logging.getLogger("samp_compat")


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, formatter_class=HelpFormatter,
                                     description="Run a SAMP hub (Standard and Web Profile) "
                                                 "until Ctrl-C (or SIGTERM).")
    parser.add_argument("--demo", action="store_true",
                        help="instead of a hub, run a self-contained tour: a private hub, two "
                             "clients and a table sent from one to the other; then exit")
    parser.add_argument("-k", "--secret", dest="secret", metavar="CODE",
                        help="custom secret code (default: a random one)")
    parser.add_argument("-d", "--addr", dest="addr", metavar="ADDR",
                        help="listening address (or IP) (default: 127.0.0.1)")
    parser.add_argument("-p", "--port", dest="port", metavar="PORT", type=int, default=0,
                        help="listening port number (0: any free port)")
    parser.add_argument("-f", "--lockfile", dest="lockfile", metavar="FILE",
                        help="custom lockfile (default: $SAMP_HUB, else ~/.samp, or a file "
                             "in ~/.samp-1/ with --multi)")
    parser.add_argument("-w", "--no-web-profile", dest="web_profile", action="store_false",
                        default=True, help="run the Hub disabling the Web Profile")
    parser.add_argument("-P", "--pool-size", dest="pool_size", metavar="SIZE", type=int,
                        default=20, help="the socket connections pool size")
    timeouts = parser.add_argument_group(
        "Timeout group", "Hub and client inactivity timeouts; a client unregistered for "
        "inactivity first receives samp.hub.disconnect.")
    timeouts.add_argument("-t", "--timeout", dest="timeout", metavar="SECONDS", type=int,
                          default=0, help="Hub inactivity timeout (0: never)")
    timeouts.add_argument("-c", "--client-timeout", dest="client_timeout", metavar="SECONDS",
                          type=int, default=0, help="client inactivity timeout (0: never)")
    logs = add_logging_arguments(parser, default_level="INFO", level_flags=("-L", "--log-level"),
                                 levels=LOG_LEVELS)
    logs.add_argument("-O", "--log-output", dest="logout", metavar="FILE", default="",
                      help="write the log messages to FILE (default: standard error)")
    advanced = parser.add_argument_group("Advanced group")
    advanced.add_argument("-l", "--label", dest="label", metavar="LABEL", default="",
                          help="assign a LABEL to the Hub (default: none)")
    advanced.add_argument("-m", "--multi", dest="mode", action="store_const", const="multiple",
                          default="single",
                          help="multi-instance mode: lockfile in ~/.samp-1/")
    advanced.add_argument("--web-port", dest="web_port", metavar="PORT", type=int,
                          default=21012, help="Web Profile port (0: any free port)")
    return parser


def _run_hub(options: argparse.Namespace, timeout: float) -> None:
    hub = None
    try:
        with reported_here(OSError, logger=log):
            hub = SAMPHubServer(secret=options.secret, addr=options.addr, port=options.port,
                                lockfile=options.lockfile, timeout=options.timeout,
                                client_timeout=options.client_timeout, mode=options.mode,
                                label=options.label, web_profile=options.web_profile,
                                web_port=options.web_port, pool_size=options.pool_size)
            hub.start(False)
        log.info("Hub running at %s", hub.params["samp.hub.xmlrpc.url"])
        stopped = hub._stopped
        if timeout:
            stopped.wait(timeout)
        else:
            while not stopped.wait(0.5):  # short waits keep Ctrl-C responsive
                pass
    finally:
        if hub is not None:
            hub.stop()


def hub_script(timeout: float = 0, argv: Optional[List[str]] = None) -> None:
    """Run a hub until Ctrl-C (or for ``timeout`` seconds when it is not 0).

    When the hub cannot start (address in use, unknown host...), one line on
    standard error says why and the process exits with status 1. With
    ``--demo``, the tour runs instead and its status is the exit status.

    Parameters
    ----------
    timeout : float, optional
        Stop the hub after this many seconds; 0 runs until interrupted or until
        the hub's own inactivity timeout (``-t``) expires.
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).
    """
    parser = _parser(command_name("samp-compat-hub"))
    options = parser.parse_args(argv)
    if options.demo:
        status = demo()
        if status:
            sys.exit(status)
        return
    handler: logging.Handler = (logging.FileHandler(options.logout) if options.logout
                                else logging.StreamHandler())
    configure_logging(options, handler=handler, logger=log)
    try:
        with interrupt_on_sigterm():
            _run_hub(options, timeout)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print("%s: %s" % (parser.prog, describe_error(exc, (options.addr or "127.0.0.1",
                                                            options.port))), file=sys.stderr)
        sys.exit(EXIT_ERROR)
    finally:
        log.removeHandler(handler)
        handler.close()
