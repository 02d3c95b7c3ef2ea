"""protocompat.cli: the logging options, the one log format and the one-line errors."""
import argparse
import errno
import io
import logging
import signal
import socket

import pytest

from protocompat import cli
from protocompat.netutil import LOOPBACK, loopback_listener


def parse(*argv, **kwargs):
    parser = argparse.ArgumentParser(prog="tool")
    cli.add_logging_arguments(parser, **kwargs)
    return parser, parser.parse_args(list(argv))


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_default_level_is_warning_and_help_shows_it():
    parser, args = parse()
    assert args.log_level == "WARNING" and args.verbose == 0
    assert "(default: WARNING)" in parser.format_help()


@pytest.mark.parametrize("argv, level", [
    ((), logging.WARNING), (("-v",), logging.INFO), (("-vv",), logging.DEBUG),
    (("--log-level", "error"), logging.ERROR), (("--log-level", "ERROR", "-v"), logging.INFO),
])
def test_verbose_and_log_level_set_the_root_level(argv, level, restore_root_logger):
    _, args = parse(*argv)
    cli.configure_logging(args, stream=io.StringIO())
    assert logging.getLogger().level == level


def test_unknown_level_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse("--log-level", "LOUD")
    assert "invalid choice" in capsys.readouterr().err


def test_records_use_the_one_format(restore_root_logger):
    out = io.StringIO()
    _, args = parse("-v")
    cli.configure_logging(args, stream=out)
    logging.getLogger("some.module").info("hello %s", "there")
    line = out.getvalue().strip()
    assert line.endswith("INFO some.module: hello there")


def test_a_command_may_add_the_originals_short_level_option():
    _, args = parse("-L", "debug", level_flags=("-L", "--log-level"))
    assert args.log_level == "DEBUG"


def test_connection_refused_is_one_clear_line():
    with loopback_listener() as probe:
        address = probe.getsockname()
    with pytest.raises(ConnectionRefusedError) as info:
        socket.create_connection(address, timeout=5).close()
    text = cli.describe_error(info.value, address)
    assert text == "connection refused by %s:%d: is the server running?" % address


def test_port_in_use_is_one_clear_line():
    with loopback_listener() as taken:
        address = taken.getsockname()
        with socket.socket() as second:
            with pytest.raises(OSError) as info:
                second.bind(address)
    assert info.value.errno == errno.EADDRINUSE
    assert cli.describe_error(info.value, address) == "address %s:%d is already in use" % address


def test_unknown_host_is_one_clear_line():
    error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    text = cli.describe_error(error, ("no-such-host.invalid", 7147))
    assert text.startswith("unknown host 'no-such-host.invalid'")


def test_run_turns_a_failure_into_a_line_on_stderr_and_status_1(capsys):
    def main():
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    status = cli.run(main, prog="tool", address=lambda: (LOOPBACK, 1))
    assert status == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err == "tool: connection refused by 127.0.0.1:1: is the server running?\n"


def test_run_passes_the_status_through_and_maps_ctrl_c():
    assert cli.run(lambda: None) == 0
    assert cli.run(lambda: 3) == 3

    def interrupted():
        raise KeyboardInterrupt

    assert cli.run(interrupted) == cli.EXIT_INTERRUPTED


def test_command_error_text_is_printed_as_is(capsys):
    def main():
        raise cli.CommandError("refused: authentication required")

    assert cli.run(main, prog="tool") == cli.EXIT_ERROR
    assert capsys.readouterr().err == "tool: refused: authentication required\n"


def test_help_formatter_shows_defaults_of_options_with_values():
    parser = argparse.ArgumentParser(prog="tool", formatter_class=cli.HelpFormatter)
    parser.add_argument("--port", type=int, default=7147, help="port")
    parser.add_argument("--name", default=None, help="a name (default: none)")
    parser.add_argument("--label", default="", help="a label")
    parser.add_argument("--flag", action="store_true", help="a flag")
    text = " ".join(parser.format_help().split())
    assert "--port PORT port (default: 7147)" in text
    assert "a name (default: none)" in text and "(default: None)" not in text
    assert "--label LABEL a label --flag" in text
    assert "(default: False)" not in text


def test_help_formatter_keeps_line_breaks_of_the_epilog():
    parser = argparse.ArgumentParser(prog="tool", formatter_class=cli.HelpFormatter,
                                     epilog="first line\nsecond line")
    assert parser.format_help().endswith("first line\nsecond line\n")


def test_configured_logging_restores_the_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    _, args = parse("-vv")
    out = io.StringIO()
    with cli.configured_logging(args, stream=out):
        logging.getLogger("inside").debug("seen")
    logging.getLogger("outside").critical("not seen here")
    assert (root.handlers, root.level) == (handlers, level)
    assert out.getvalue().strip().endswith("DEBUG inside: seen")


def test_configure_logging_of_a_package_logger_adds_its_handler():
    logger = logging.getLogger("protocompat.test_cli_package")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    _, args = parse("--log-level", "INFO")
    try:
        cli.configure_logging(args, handler=handler, logger=logger)
        logger.info("hello")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert out.getvalue().strip().endswith("INFO protocompat.test_cli_package: hello")


def test_a_command_may_accept_the_originals_extra_level_names(restore_root_logger):
    _, args = parse("-L", "warn", level_flags=("-L",), levels=("WARN", "FATAL"))
    cli.configure_logging(args, stream=io.StringIO())
    assert logging.getLogger().level == logging.WARN


def _log_failure(logger, exc):
    try:
        raise exc
    except OSError:
        logger.exception("could not bind")


def test_reported_here_drops_the_logged_copy_of_the_reported_error(restore_root_logger):
    out = io.StringIO()
    _, args = parse()
    cli.configure_logging(args, stream=out)
    logger = logging.getLogger("protocompat.test_cli_reported")
    with cli.reported_here(OSError):
        _log_failure(logger, OSError(errno.EADDRINUSE, "Address already in use"))
        logger.error("another failure")
    _log_failure(logger, OSError(errno.EADDRINUSE, "Address already in use"))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("ERROR protocompat.test_cli_reported: another failure")
    assert lines[1].endswith("ERROR protocompat.test_cli_reported: could not bind")
    assert "Traceback" in out.getvalue()


def test_reported_here_drops_nothing_at_debug_level(restore_root_logger):
    out = io.StringIO()
    _, args = parse("-vv")
    cli.configure_logging(args, stream=out)
    with cli.reported_here(OSError):
        _log_failure(logging.getLogger("x"), OSError(errno.EADDRINUSE, "in use"))
    assert "could not bind" in out.getvalue()


def test_connect_error_says_why_a_connection_fails():
    with loopback_listener() as probe:
        address = probe.getsockname()
        assert cli.connect_error(address, 5.0) is None
    assert isinstance(cli.connect_error(address, 5.0), ConnectionRefusedError)


def test_connect_error_of_an_unknown_host_is_a_gaierror():
    assert isinstance(cli.connect_error(("nonexistent.invalid", 7147), 5.0), socket.gaierror)


def test_command_name_is_the_script_or_the_module_form(monkeypatch):
    monkeypatch.setattr("sys.argv", ["/usr/bin/katcp-compat-cmd"])
    assert cli.command_name("python -m katcp_compat.cmd") == "katcp-compat-cmd"
    monkeypatch.setattr("sys.argv", ["/src/katcp_compat/cmd.py"])
    assert cli.command_name("python -m katcp_compat.cmd") == "python -m katcp_compat.cmd"


def test_interrupt_on_sigterm_raises_keyboard_interrupt_then_restores():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with cli.interrupt_on_sigterm():
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_gaierror_from_a_real_lookup_is_one_line():
    with pytest.raises(socket.gaierror) as info:
        socket.getaddrinfo("nonexistent.invalid", 7147)
    text = cli.describe_error(info.value, ("nonexistent.invalid", 7147))
    assert text.startswith("unknown host 'nonexistent.invalid' (") and "\n" not in text
