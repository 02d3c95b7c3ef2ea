"""The ``samp-compat-hub`` command: run a SAMP hub (options as astropy's ``samp_hub``)."""
import argparse
import logging
import sys
from typing import List, Optional

from .hub import SAMPHubServer

__all__ = ["hub_script"]

_LOG_LEVELS = ["CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET"]

#: The package logger that ``-L`` and ``-O`` configure (``hub_script.log`` as in the original).
log = logging.getLogger("samp_compat")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samp-compat-hub",
                                     description="Run a SAMP hub (Standard and Web Profile).")
    parser.add_argument("-k", "--secret", dest="secret", metavar="CODE",
                        help="custom secret code.")
    parser.add_argument("-d", "--addr", dest="addr", metavar="ADDR",
                        help="listening address (or IP).")
    parser.add_argument("-p", "--port", dest="port", metavar="PORT", type=int, default=0,
                        help="listening port number.")
    parser.add_argument("-f", "--lockfile", dest="lockfile", metavar="FILE",
                        help="custom lockfile.")
    parser.add_argument("-w", "--no-web-profile", dest="web_profile", action="store_false",
                        default=True, help="run the Hub disabling the Web Profile.")
    parser.add_argument("-P", "--pool-size", dest="pool_size", metavar="SIZE", type=int,
                        default=20, help="the socket connections pool size.")
    timeouts = parser.add_argument_group(
        "Timeout group", "Hub and client inactivity timeouts; a client unregistered for "
        "inactivity first receives samp.hub.disconnect.")
    timeouts.add_argument("-t", "--timeout", dest="timeout", metavar="SECONDS", type=int,
                          default=0, help="Hub inactivity timeout (0: never).")
    timeouts.add_argument("-c", "--client-timeout", dest="client_timeout", metavar="SECONDS",
                          type=int, default=0, help="client inactivity timeout (0: never).")
    logs = parser.add_argument_group("Logging options")
    logs.add_argument("-L", "--log-level", dest="loglevel", metavar="LEVEL", type=str.upper,
                      choices=_LOG_LEVELS, default="INFO",
                      help="log level (%s)." % ", ".join(_LOG_LEVELS))
    logs.add_argument("-O", "--log-output", dest="logout", metavar="FILE", default="",
                      help="write the log messages to FILE.")
    advanced = parser.add_argument_group("Advanced group")
    advanced.add_argument("-l", "--label", dest="label", metavar="LABEL", default="",
                          help="assign a LABEL to the Hub.")
    advanced.add_argument("-m", "--multi", dest="mode", action="store_const", const="multiple",
                          default="single",
                          help="multi-instance mode: lockfile in ~/.samp-1/.")
    advanced.add_argument("--web-port", dest="web_port", metavar="PORT", type=int,
                          default=21012, help="Web Profile port (0: any free port).")
    return parser


def hub_script(timeout: float = 0, argv: Optional[List[str]] = None) -> None:
    """Run a hub until Ctrl-C (or for ``timeout`` seconds when it is not 0).

    Parameters
    ----------
    timeout : float, optional
        Stop the hub after this many seconds; 0 runs until interrupted or until
        the hub's own inactivity timeout (``-t``) expires.
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).
    """
    options = _parser().parse_args(argv)
    handler: logging.Handler = (logging.FileHandler(options.logout) if options.logout
                                else logging.StreamHandler())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = log
    logger.addHandler(handler)
    logger.setLevel(options.loglevel)
    hub = None
    try:
        hub = SAMPHubServer(secret=options.secret, addr=options.addr, port=options.port,
                            lockfile=options.lockfile, timeout=options.timeout,
                            client_timeout=options.client_timeout, mode=options.mode,
                            label=options.label, web_profile=options.web_profile,
                            web_port=options.web_port, pool_size=options.pool_size)
        hub.start(False)
        logger.info("Hub running at %s", hub.params["samp.hub.xmlrpc.url"])
        stopped = hub._stopped
        if timeout:
            stopped.wait(timeout)
        else:
            while not stopped.wait(0.5):  # short waits keep Ctrl-C responsive
                pass
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print("[SAMP] Error: I/O error(%s): %s" % (exc.errno, exc.strerror), file=sys.stderr)
        sys.exit(1)
    finally:
        if hub is not None:
            hub.stop()
        logger.removeHandler(handler)
        handler.close()
