"""Tab completion for the interactive KATCP client: request, sensor and strategy names.

No I/O and no readline: :class:`Completer` is given the names (the client
fetches them with ``?help`` and ``?sensor-list``) and a callable returning
the text before the cursor; readline calls :meth:`Completer.complete`.
"""

from typing import Callable, Iterable, List, Optional, Sequence

__all__ = ["Completer", "SENSOR_REQUESTS", "STRATEGIES"]

#: Requests whose first argument is a sensor name.
SENSOR_REQUESTS = ("?sensor-list", "?sensor-value", "?sensor-sampling")
#: Sampling strategy names, completed after ``?sensor-sampling NAME``.
STRATEGIES = ("none", "auto", "period", "event", "differential", "event-rate",
              "differential-rate")
#: The request whose argument is a request name.
HELP_REQUEST = "?help"


def _starting_with(prefix: str, names: Iterable[str]) -> List[str]:
    return sorted(name for name in set(names) if name.startswith(prefix))


class Completer:
    """Complete the word before the cursor of a client command line.

    - the first word: ``?`` and a request name, or a local command;
    - after ``?sensor-list``, ``?sensor-value``, ``?sensor-sampling``: a sensor
      name, then (``?sensor-sampling``) a strategy;
    - after ``?help``: a request name;
    - after a local command that takes sensors (``watch``): sensor names.

    Parameters
    ----------
    requests : iterable of str
        Request names without the ``?`` (``help``, ``sensor-list``, ...).
    sensors : iterable of str
        Sensor names.
    commands : iterable of str
        Local commands offered as first words (``watch``, ``quit``, ...).
    sensor_commands : iterable of str
        Those of ``commands`` whose arguments are sensor names.
    line : callable
        ``line() -> str``: the command line up to the cursor (readline's
        buffer); used by :meth:`complete`.
    """

    def __init__(self, requests: Iterable[str] = (), sensors: Iterable[str] = (),
                 commands: Iterable[str] = (), sensor_commands: Iterable[str] = (),
                 line: Callable[[], str] = lambda: "") -> None:
        self.requests: List[str] = list(requests)
        self.sensors: List[str] = list(sensors)
        self.commands: List[str] = list(commands)
        self.sensor_commands = frozenset(sensor_commands)
        self._line = line
        self._found: List[str] = []

    def matches(self, line: str) -> List[str]:
        """Every completion of the last word of ``line`` (the text before the cursor).

        Parameters
        ----------
        line : str
            The command line up to the cursor.

        Returns
        -------
        words : list of str
            The candidate words, sorted; empty when nothing fits.
        """
        words = line.split()
        if not line or line[-1].isspace():
            words.append("")
        word, before = words[-1], words[:-1]
        if not before:
            return self._first_words(word)
        first = before[0]
        if first in self.sensor_commands:
            return _starting_with(word, self.sensors)
        if len(before) == 1 and first in SENSOR_REQUESTS:
            return _starting_with(word, self.sensors)
        if len(before) == 2 and first == "?sensor-sampling":
            return _starting_with(word, STRATEGIES)
        if len(before) == 1 and first == HELP_REQUEST:
            return _starting_with(word, self.requests)
        return []

    def _first_words(self, word: str) -> List[str]:
        requests = _starting_with(word, ["?" + name for name in self.requests])
        if word.startswith("?"):
            return requests
        return _starting_with(word, self.commands) + requests

    def complete(self, text: str, state: int) -> Optional[str]:
        """readline's completer: the ``state``-th completion of ``text``, or None.

        Each completion ends with a space, so a unique one moves the cursor
        on to the next word.

        Parameters
        ----------
        text : str
            The word readline completes (it splits words at whitespace).
        state : int
            0 for the first candidate, then 1, 2, ... until None.
        """
        if state == 0:
            found = self.matches(self._line())
            self._found = [word + " " for word in found if word.startswith(text)]
        return self._found[state] if state < len(self._found) else None

    def update(self, requests: Optional[Sequence[str]] = None,
               sensors: Optional[Sequence[str]] = None) -> None:
        """Replace the request or sensor names (e.g. after ``#interface-changed``)."""
        if requests is not None:
            self.requests = list(requests)
        if sensors is not None:
            self.sensors = list(sensors)
