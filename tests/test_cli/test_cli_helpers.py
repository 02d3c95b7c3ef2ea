"""protocompat.cli: the logging options, the one log format and the one-line errors."""
import argparse
import errno
import io
import logging
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
