"""The KATCP command lines as a user runs them: the example server and the client.

Every run is a separate process talking over loopback; errors must be one
line on stderr with a non-zero status and no traceback.
"""

import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

# Pseudo-terminals, sessions and preexec_fn: POSIX only.
fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")

from katcp_compat.__main__ import ExampleDevice
from katcp_io_helpers import WAIT, started
from protocompat.cli import LOG_FORMAT
from protocompat.netutil import LOOPBACK, loopback_listener

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_LIMIT = 30.0  # bound on a run that takes well under a second
UNKNOWN_HOST = "nonexistent.invalid"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: ")
SERVER = ("-m", "katcp_compat")
CLIENT = ("-m", "katcp_compat.cmd")


def run(*args, stdin="", home=None):
    env = dict(os.environ, HOME=str(home or ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=RUN_LIMIT, input=stdin, env=env)


def one_line_error(result, text):
    """The run failed with status 1 and said exactly ``text`` (after its name), on one line."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(": " + text), lines[0]
    assert "Traceback" not in result.stderr


def closed_port():
    """A loopback port with nothing listening: bound, then closed."""
    with loopback_listener() as probe:
        return probe.getsockname()[1]


def restore_sigint():
    # Processes started from a background job ignore SIGINT; Ctrl-C must work in the child.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def device():
    srv = started(ExampleDevice(LOOPBACK, 0))
    yield srv
    srv.stop(WAIT)
    srv.join(WAIT)


@pytest.fixture
def address(device):
    return "%s:%d" % device.bind_address[:2]


class Lines:
    """Lines of a child's stdout, read with a deadline."""

    def __init__(self, proc):
        self.proc = proc

    def until(self, pattern):
        deadline = time.monotonic() + WAIT
        seen = []
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    break
                seen.append(line)
                if re.search(pattern, line):
                    return seen
        raise AssertionError("no %r in %r" % (pattern, seen))


@pytest.fixture
def spawn():
    procs = []

    def start(*args):
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                preexec_fn=restore_sigint)
        procs.append(proc)
        return proc, Lines(proc)
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(RUN_LIMIT)
        proc.stdout.close()
        proc.stderr.close()


# -- the example server ------------------------------------------------------------------------
def test_server_help_shows_every_default():
    result = run(*SERVER, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    # Python 3.13 shows "-a, --host HOST" where older ones show "-a HOST, --host HOST".
    for fragment in ("-a", "--host HOST", "(default: 127.0.0.1)", "-p", "--port PORT",
                     "(default: 7147)", "--demo", "-v, --verbose",
                     "--log-level LEVEL", "(default: WARNING)"):
        assert fragment in text


def test_server_listens_on_loopback_by_default(spawn):
    proc, lines = spawn(*SERVER, "--port", "0")
    assert "Example KATCP device on 127.0.0.1:" in lines.until("Ctrl-C stops it")[-1]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(RUN_LIMIT) == 0
    assert proc.stderr.read() == ""


def test_server_port_in_use_is_one_line():
    with loopback_listener() as taken:
        port = taken.getsockname()[1]
        result = run(*SERVER, "--port", str(port))
    one_line_error(result, "address 127.0.0.1:%d is already in use" % port)


def test_server_unknown_host_is_one_line():
    result = run(*SERVER, "--host", UNKNOWN_HOST, "--port", "0")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert ": unknown host '%s'" % UNKNOWN_HOST in result.stderr


def test_server_verbose_logs_in_the_one_format(spawn):
    proc, lines = spawn(*SERVER, "--port", "0", "-vv")
    port = int(re.search(r":(\d+);", lines.until("Ctrl-C stops it")[-1]).group(1))
    result = run(*CLIENT, "127.0.0.1:%d" % port, "?no-such-request")
    assert result.returncode == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(RUN_LIMIT) == 0
    log = proc.stderr.read().splitlines()
    assert any("ERROR katcp_compat.server: no-such-request INVALID" in line for line in log)
    assert all(LOG_LINE.match(line) for line in log), log
    assert LOG_FORMAT == "%(asctime)s %(levelname)s %(name)s: %(message)s"


# -- the client: errors ------------------------------------------------------------------------
def test_client_help_shows_every_default():
    result = run(*CLIENT, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for fragment in ("(default: 127.0.0.1)", "(default: 7147)", "(default: 5.0)",
                     "(default: event)", "(default: 0)", "(default: ~/.katcp_compat_history)",
                     "(default: WARNING)", "--watch", "--interactive"):
        assert fragment in text


def test_client_connection_refused_is_one_line():
    port = closed_port()
    result = run(*CLIENT, "127.0.0.1:%d" % port, "?watchdog")
    one_line_error(result, "connection refused by 127.0.0.1:%d: is the server running?" % port)


def test_client_unknown_host_is_one_line():
    result = run(*CLIENT, "%s:7147" % UNKNOWN_HOST, "?watchdog")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert ": unknown host '%s'" % UNKNOWN_HOST in result.stderr


def test_client_example_options_name_the_device():
    port = closed_port()
    result = run(*CLIENT, "-a", "127.0.0.1", "-p", str(port), "?watchdog")
    one_line_error(result, "connection refused by 127.0.0.1:%d: is the server running?" % port)


def test_client_word_that_is_no_request_is_a_usage_error():
    result = run(*CLIENT, "127.0.0.1:%d" % closed_port(), "watchdog")
    assert result.returncode == 2
    assert "not a request (requests start with '?'): 'watchdog'" in result.stderr


def test_client_malformed_request_is_a_usage_error():
    result = run(*CLIENT, "127.0.0.1:%d" % closed_port(), "?1bad")
    assert result.returncode == 2
    assert "cannot parse '?1bad': Bad message name" in result.stderr


# -- the client: requests ----------------------------------------------------------------------
def test_client_reads_requests_from_stdin(address):
    result = run(*CLIENT, address, stdin="?add 1 2\n\n?set-mode observe\n")
    assert (result.returncode, result.stdout) == (0, "!add ok 3.0\n!set-mode ok observe\n")


def test_client_stdin_with_a_failed_reply_exits_1(address):
    result = run(*CLIENT, address, stdin="?set-mode dance\n?add 1 1\n")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "!add ok 2.0"


def test_client_stdin_unknown_local_command_is_one_line(address):
    result = run(*CLIENT, address, stdin="bogus\n")
    one_line_error(result, "unknown command 'bogus': type ?help for the device's requests, "
                           "help for the local commands")


def test_client_verbose_logs_in_the_one_format(address):
    result = run(*CLIENT, address, "?watchdog", "-vv")
    assert result.returncode == 0
    log = result.stderr.splitlines()
    assert any(re.search(r"DEBUG katcp_compat\S*: Connected to", line) for line in log), log
    assert all(LOG_LINE.match(line) for line in log), log


# -- the client: watching sensors --------------------------------------------------------------
def test_watch_prints_sensor_status_until_the_count(address):
    result = run(*CLIENT, address, "--watch", "counter", "-n", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "(watching 1 sensor; Ctrl-C stops)"
    # The first is the value at subscription: "unknown" if the device has not updated it yet.
    assert [re.sub(r"\d+", "N", line).replace("unknown", "nominal") for line in lines[1:]] == [
        "#sensor-status N.N N counter nominal N"] * 3


def test_watch_selects_sensors_by_glob_and_regex(address):
    result = run(*CLIENT, address, "-w", "coun*", "/^wa/", "-n", "4", "-s", "period 0.05")
    assert result.returncode == 0, result.stderr
    names = {line.split()[3] for line in result.stdout.splitlines()[1:]}
    assert names == {"counter", "wave"}


def test_watch_pattern_matching_nothing_is_one_line(address):
    one_line_error(run(*CLIENT, address, "--watch", "nosuch"), "no sensor matches 'nosuch'")


def test_watch_refused_strategy_is_one_line(address):
    result = run(*CLIENT, address, "--watch", "mode", "-s", "dance")
    assert result.returncode == 1
    assert ": cannot watch mode: !sensor-sampling fail" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_watch_runs_until_interrupted_and_exits_0(spawn, address, signum):
    proc, lines = spawn(*CLIENT, address, "--watch", "counter")
    lines.until("#sensor-status .* counter ")
    lines.until("#sensor-status .* counter ")
    proc.send_signal(signum)
    assert proc.wait(RUN_LIMIT) == 0
    assert proc.stderr.read() == ""


def test_client_lost_connection_while_watching_is_one_line(spawn):
    srv = started(ExampleDevice(LOOPBACK, 0))
    try:
        proc, lines = spawn(*CLIENT, "%s:%d" % srv.bind_address[:2], "--watch", "counter")
        lines.until("#sensor-status")
    finally:
        srv.stop(WAIT)
        srv.join(WAIT)
    assert proc.wait(RUN_LIMIT) == 1
    assert proc.stderr.read().rstrip().endswith("connection to %s:%d lost" % srv.bind_address[:2])


# -- the client: interactive -------------------------------------------------------------------
def test_interactive_without_terminal_prompts_and_keeps_going_after_errors(address, tmp_path):
    result = run(*CLIENT, "-i", address, stdin="?add 1 2\nbogus\nhelp\n?set-mode dance\nquit\n",
                 home=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Connected to %s." % address)
    assert "%s> !add ok 3.0" % address in out
    assert "error: unknown command 'bogus'" in out
    assert "watch [PATTERN ...]: subscribe to sensors" in out
    assert "!set-mode fail Unknown mode 'dance'" in out
    assert not (tmp_path / ".katcp_compat_history").exists()  # no terminal: no history


def test_interactive_runs_the_given_requests_first(address):
    result = run(*CLIENT, "-i", address, "?watchdog", stdin="")
    assert result.returncode == 0
    assert result.stdout.startswith("!watchdog ok\nConnected to")


class Terminal:
    """A child process on a pseudo-terminal it has as controlling terminal (Ctrl-C works)."""

    def __init__(self, args, home):
        self.master, slave = os.openpty()
        env = dict(os.environ, HOME=str(home), TERM="dumb")
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdin=slave,
                                     stdout=slave, stderr=slave, env=env,
                                     preexec_fn=self._take_terminal)
        os.close(slave)
        self.seen = b""

    @staticmethod
    def _take_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        restore_sigint()

    def type(self, data):
        os.write(self.master, data)

    def until(self, text):
        """Read until ``text`` appears; return what came up to it and consume it."""
        deadline = time.monotonic() + WAIT
        while text not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    break
        assert text in self.seen, (text, self.seen)
        before, self.seen = self.seen.split(text, 1)
        return before

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(RUN_LIMIT)
        os.close(self.master)


@pytest.fixture
def terminal(tmp_path):
    terminals = []

    def start(*args):
        term = Terminal(args, tmp_path)
        terminals.append(term)
        return term
    yield start
    for term in terminals:
        term.close()


def test_terminal_tab_completes_request_and_sensor_names(terminal, address):
    term = terminal(*CLIENT, address)
    prompt = ("%s> " % address).encode()
    term.until(prompt)
    term.type(b"?sensor-v\t")
    term.until(b"?sensor-value ")
    term.type(b"mo\t")
    term.until(b"mode ")
    term.type(b"\r")
    term.until(b"!sensor-value ok 1")
    term.until(prompt)
    term.type(b"\x04")
    assert term.proc.wait(RUN_LIMIT) == 0


def test_terminal_keeps_history_in_the_home_folder(terminal, address, tmp_path):
    term = terminal(*CLIENT, address)
    term.until(b"> ")
    term.type(b"?watchdog\r")
    term.until(b"!watchdog ok")
    term.until(b"> ")
    term.type(b"quit\r")
    assert term.proc.wait(RUN_LIMIT) == 0
    assert (tmp_path / ".katcp_compat_history").read_text().split() == ["?watchdog", "quit"]
    # The next session starts with it: Ctrl-P brings the last line back.
    again = terminal(*CLIENT, address)
    again.until(b"> ")
    again.type(b"\x10\x10\r")
    again.until(b"!watchdog ok")
    again.until(b"> ")
    again.type(b"\x04")
    assert again.proc.wait(RUN_LIMIT) == 0


def test_terminal_without_history_file_writes_none(terminal, address, tmp_path):
    term = terminal(*CLIENT, address, "--history", "")
    term.until(b"> ")
    term.type(b"?watchdog\r")
    term.until(b"!watchdog ok")
    term.until(b"> ")
    term.type(b"\x04")
    assert term.proc.wait(RUN_LIMIT) == 0
    assert list(tmp_path.iterdir()) == []


def test_terminal_with_home_not_writable_keeps_no_history(address, tmp_path):
    home = tmp_path / "missing"  # no such folder: nothing can be written there
    term = Terminal((*CLIENT, address), home)
    try:
        term.until(b"> ")
        term.type(b"?watchdog\r")
        term.until(b"!watchdog ok")
        term.until(b"> ")
        term.type(b"\x04")
        assert term.proc.wait(RUN_LIMIT) == 0
    finally:
        term.close()
    assert list(tmp_path.iterdir()) == []


def test_terminal_watch_stops_on_ctrl_c_and_prompts_again(terminal, address):
    term = terminal(*CLIENT, address)
    prompt = ("%s> " % address).encode()
    term.until(prompt)
    term.type(b"watch cou\t\r")
    term.until(b"(watching 1 sensor; Ctrl-C stops)")
    term.until(b"#sensor-status")
    term.type(b"\x03")
    term.until(prompt)
    term.type(b"?sensor-value counter\r")
    term.until(b"!sensor-value ok 1")
    term.until(prompt)
    term.type(b"\x04")
    assert term.proc.wait(RUN_LIMIT) == 0


def test_terminal_lost_connection_ends_the_session(terminal):
    srv = started(ExampleDevice(LOOPBACK, 0))
    try:
        term = terminal(*CLIENT, "%s:%d" % srv.bind_address[:2])
        term.until(b"> ")
    finally:
        srv.stop(WAIT)
        srv.join(WAIT)
    term.type(b"?watchdog\r")
    lost = b"connection to %s:%d lost" % (srv.bind_address[0].encode(), srv.bind_address[1])
    assert b"!watchdog fail" in term.until(lost)
    assert term.proc.wait(RUN_LIMIT) == 1
