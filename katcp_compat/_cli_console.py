"""The command-line KATCP client's session: requests, watching sensors, the interactive prompt.

:class:`ConsoleClient` is a :class:`~katcp_compat.client.BlockingClient` that
keeps the informs no request asked for (``#sensor-status``, ``#log``, ...) in a
bounded queue; :class:`Session` sends requests, watches sensors and runs the
prompt. Everything is printed from the thread that runs the session, so
output never interleaves with the prompt mid-line.
"""

import fnmatch
import os
import queue
import re
import sys
from typing import IO, Iterable, List, Optional, Sequence, Tuple

from protocompat.cli import CommandError

from ._cli_completion import Completer
from ._cli_format import readable
from .client import BlockingClient
from .core import Message, MessageParser

try:
    import readline
except ImportError:  # a Python built without it: no line editing, no history
    readline = None  # type: ignore[assignment]

__all__ = ["ConsoleClient", "Session", "DEFAULT_HISTORY", "LOCAL_COMMANDS"]

#: The interactive prompt's history file (in the user's home).
DEFAULT_HISTORY = os.path.join("~", ".katcp_compat_history")
#: Lines kept in the history file.
HISTORY_LENGTH = 1000
#: Unsolicited informs kept while nobody reads them; later ones are counted and dropped.
MAX_QUEUED_INFORMS = 10000
#: Seconds between checks that the connection is still up while watching.
WATCH_POLL = 0.5
#: Local commands of the prompt (and of requests read from stdin) and what they do.
LOCAL_COMMANDS = {
    "watch": "watch [PATTERN ...]: subscribe to sensors (all, a name, a glob or /regex/) "
             "and print #sensor-status as it arrives; Ctrl-C stops",
    "help": "help: this list (?help lists the device's requests)",
    "quit": "quit (or exit, or Ctrl-D): leave",
    "exit": "",
}
_QUIT = ("quit", "exit")


class ConsoleClient(BlockingClient):
    """A blocking client that queues the informs no request asked for.

    Parameters
    ----------
    host, port
        The device.
    timeout : float
        Seconds per request.
    """

    def __init__(self, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, auto_reconnect=False)
        #: Informs no request asked for, oldest first (I/O thread puts, session gets).
        self.informs: "queue.Queue[Message]" = queue.Queue(MAX_QUEUED_INFORMS)
        #: How many informs were dropped because :attr:`informs` was full.
        self.dropped = 0

    def _keep(self, msg: Message) -> None:
        try:
            self.informs.put_nowait(msg)
        except queue.Full:
            self.dropped += 1

    def inform_sensor_status(self, msg: Message) -> None:
        """Queue a sensor update (I/O thread)."""
        self._keep(msg)

    def unhandled_inform(self, msg: Message) -> None:
        """Queue any other inform no request asked for (I/O thread)."""
        self._keep(msg)


def parse_request(line: str) -> Message:
    """The request a line in wire form stands for (``?name arg ...``).

    Raises
    ------
    CommandError
        If the line is not a well-formed request.
    """
    try:
        msg = MessageParser().parse(line.encode("utf-8"))
    except ValueError as exc:
        raise CommandError("cannot parse %r: %s" % (line, exc)) from None
    if msg.mtype != Message.REQUEST:
        raise CommandError("not a request (requests start with '?'): %r" % line)
    return msg


class Session:
    """Requests, sensor watching and the prompt over one connected :class:`ConsoleClient`.

    Parameters
    ----------
    client : ConsoleClient
        A started, connected client.
    out : file, optional
        Where answers go (default: ``sys.stdout`` at the time of writing).
    raw : bool
        Print messages in wire form (escaped) rather than readable.
    strategy : sequence of str
        The sampling strategy and its parameters used by watching
        (``("event",)``, ``("period", "1")``...).
    """

    def __init__(self, client: ConsoleClient, out: Optional[IO[str]] = None, raw: bool = False,
                 strategy: Sequence[str] = ("event",)) -> None:
        self.client = client
        self._out = out
        self._show = str if raw else readable
        self._strategy = list(strategy)
        self.completer = Completer(commands=[name for name in LOCAL_COMMANDS],
                                   sensor_commands=["watch"], line=_readline_before_cursor)

    # -- output ------------------------------------------------------------------------
    def _print(self, text: str) -> None:
        out = self._out if self._out is not None else sys.stdout
        out.write(text + "\n")
        out.flush()

    def _print_message(self, msg: Message) -> None:
        self._print(self._show(msg))

    def print_pending(self) -> None:
        """Print the informs that arrived since the last call.

        After an ``#interface-changed`` the request and sensor names of the
        completion are fetched again.
        """
        changed = False
        while True:
            try:
                msg = self.client.informs.get_nowait()
            except queue.Empty:
                break
            self._print_message(msg)
            changed = changed or msg.name == "interface-changed"
        if changed:
            self.fetch_names()
        if self.client.dropped:
            self._print("(%d informs dropped: too many unread)" % self.client.dropped)
            self.client.dropped = 0

    # -- requests ----------------------------------------------------------------------
    def ask(self, msg: Message) -> Tuple[Message, List[Message]]:
        """Send a request and wait for its reply (within the client's timeout)."""
        return self.client.blocking_request(msg, use_mid=False)

    def request(self, line: str) -> bool:
        """Send the request ``line`` (wire form) and print its informs and reply.

        Returns
        -------
        ok : bool
            Whether the reply was ``ok``.
        """
        reply, informs = self.ask(parse_request(line))
        if reply.mtype != Message.REPLY:
            # A request that could not be sent comes back, as in katcp, as a request-typed
            # message "name fail reason": show it as the failed reply it stands for.
            reply = Message.reply(reply.name, *reply.arguments)
        for inform in informs:
            self._print_message(inform)
        self._print_message(reply)
        return reply.reply_ok()

    def _names(self, request: str) -> List[str]:
        reply, informs = self.ask(Message.request(request))
        if not reply.reply_ok():
            return []
        return [inform.arguments[0].decode("utf-8", "replace") for inform in informs
                if inform.arguments]

    def fetch_names(self) -> None:
        """Ask the device for its request and sensor names (for completion)."""
        self.completer.update(requests=self._names("help"), sensors=self._names("sensor-list"))

    # -- watching ----------------------------------------------------------------------
    def sensors_matching(self, patterns: Iterable[str]) -> List[str]:
        """The device's sensors matching any of ``patterns`` (all if there are none).

        A pattern is a name, a glob (``wave*``) or ``/regex/`` (searched,
        as ``?sensor-list`` does).

        Raises
        ------
        CommandError
            If a pattern matches no sensor, or a regex is malformed.
        """
        names = self._names("sensor-list")
        chosen: List[str] = []
        for pattern in list(patterns) or ["*"]:
            if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
                try:
                    regex = re.compile(pattern[1:-1])
                except re.error as exc:
                    raise CommandError("bad sensor pattern %r: %s" % (pattern, exc)) from None
                found = [name for name in names if regex.search(name)]
            else:
                found = fnmatch.filter(names, pattern)
            if not found:
                raise CommandError("no sensor matches %r" % pattern)
            chosen.extend(name for name in found if name not in chosen)
        return chosen

    def _sample(self, name: str, strategy: Sequence[str]) -> Message:
        reply, _ = self.ask(Message.request("sensor-sampling", name, *strategy))
        return reply

    def watch(self, patterns: Iterable[str] = (), count: int = 0) -> int:
        """Subscribe to sensors, print updates as they arrive, unsubscribe.

        Runs until Ctrl-C or, when ``count`` is not 0, until ``count``
        ``#sensor-status`` informs were printed. Other informs arriving
        meanwhile are printed too.

        Returns
        -------
        updates : int
            The ``#sensor-status`` informs printed.

        Raises
        ------
        CommandError
            If no sensor matches, a subscription is refused or the
            connection is lost.
        """
        names = self.sensors_matching(patterns)
        subscribed: List[str] = []
        updates = 0
        try:
            for name in names:
                reply = self._sample(name, self._strategy)
                if not reply.reply_ok():
                    raise CommandError("cannot watch %s: %s" % (name, self._show(reply)))
                subscribed.append(name)
            self._print("(watching %d sensor%s; Ctrl-C stops)"
                        % (len(names), "" if len(names) == 1 else "s"))
            while not count or updates < count:
                try:
                    msg = self.client.informs.get(timeout=WATCH_POLL)
                except queue.Empty:
                    if not self.client.is_connected():
                        raise CommandError("connection to %s lost" % _address(self.client))
                    continue
                self._print_message(msg)
                if msg.name == "sensor-status":
                    updates += 1
        except KeyboardInterrupt:
            pass
        finally:
            if self.client.is_connected():
                for name in subscribed:
                    self._sample(name, ("none",))
        return updates

    # -- lines and the prompt ----------------------------------------------------------
    def execute(self, line: str) -> bool:
        """Run one line: a request (``?...``) or a local command.

        Returns
        -------
        ok : bool
            False for a failed reply.

        Raises
        ------
        CommandError
            For an unknown command or a failed watch.
        """
        words = line.split()
        if not words:
            return True
        if words[0].startswith("?"):
            return self.request(line)
        if words[0] == "watch":
            self.watch(words[1:])
            return True
        if words[0] == "help":
            for text in LOCAL_COMMANDS.values():
                if text:
                    self._print(text)
            return True
        raise CommandError("unknown command %r: type ?help for the device's requests, "
                           "help for the local commands" % words[0])

    def run_lines(self, lines: Iterable[str]) -> int:
        """Run each non-empty line (``quit`` ends early); stop at the first error.

        Returns
        -------
        status : int
            0 if every reply was ok, 1 otherwise.
        """
        status = 0
        for line in lines:
            line = line.strip()
            if not line:
                continue
            if line in _QUIT:
                break
            if not self.execute(line):
                status = 1
        return status

    def interactive(self, history: Optional[str] = DEFAULT_HISTORY) -> int:
        """Prompt for lines until ``quit`` or end of input (Ctrl-D).

        Lines come from stdin. With a terminal: line editing, a history kept in ``history`` (when
        its folder is writable) and tab completion of request and sensor
        names. An error is printed and the prompt comes back; Ctrl-C drops
        the line (or stops a watch).

        Returns
        -------
        status : int
            0, or 1 if the connection was lost.
        """
        # input() edits lines with readline only when both ends are a terminal.
        editing = readline is not None and sys.stdin.isatty() and sys.stdout.isatty()
        history_file = _history_path(history) if editing else None
        if editing:
            _setup_readline(self.completer, history_file)
        self.fetch_names()
        prompt = "%s> " % _address(self.client)
        self._print("Connected to %s. Tab completes, 'help' lists local commands, "
                    "Ctrl-D leaves." % _address(self.client))
        try:
            while True:
                self.print_pending()
                if not self.client.is_connected():
                    raise CommandError("connection to %s lost" % _address(self.client))
                try:
                    line = input(prompt).strip()
                except EOFError:
                    self._print("")
                    return 0
                except KeyboardInterrupt:
                    self._print("")
                    continue
                if not line:
                    continue
                if line in _QUIT:
                    return 0
                try:
                    self.execute(line)
                except KeyboardInterrupt:
                    self._print("(interrupted)")
                except CommandError as exc:
                    self._print("error: %s" % exc)
        finally:
            if history_file is not None:
                _save_history(history_file)


def _address(client: BlockingClient) -> str:
    return "%s:%s" % client.bind_address[:2]


def _readline_before_cursor() -> str:
    if readline is None:
        return ""
    return readline.get_line_buffer()[:readline.get_endidx()]


def _history_path(history: Optional[str]) -> Optional[str]:
    """The history file to use: ``history`` expanded, if its folder is writable; else None."""
    if not history:
        return None
    path = os.path.expanduser(history)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path):
        return path if os.access(path, os.W_OK) else None
    return path if os.access(folder, os.W_OK) else None


def _setup_readline(completer: Completer, history_file: Optional[str]) -> None:
    readline.set_completer(completer.complete)
    readline.set_completer_delims(" \t\n")
    if "libedit" in (readline.__doc__ or ""):  # macOS's readline module
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    readline.set_history_length(HISTORY_LENGTH)
    if history_file is not None and os.path.exists(history_file):
        try:
            readline.read_history_file(history_file)
        except OSError:
            pass  # unreadable or not a history file: start afresh


def _save_history(history_file: str) -> None:
    try:
        readline.write_history_file(history_file)
    except OSError:
        pass  # the folder became unwritable: the history is not kept
