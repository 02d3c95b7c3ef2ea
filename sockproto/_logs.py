"""Log helpers: lines tagged with a channel name, and the TX/RX message lines.

The :mod:`logging` module keeps every logger that :func:`logging.getLogger`
ever made, so a logger per name a peer chooses would grow without bound. A
name that comes from a peer is therefore carried by a :class:`ChannelLogger`:
a logger that is never registered, writes its records under the name of a
logger the application chose and goes away with the connection.
"""

import logging
from typing import Any, Optional, Tuple

__all__ = ["ChannelLogger", "log_message"]

# Longest data text in a TX/RX log line.
_LOG_DATA_CHARS = 1000


def _shown(name: str) -> str:
    """``name`` as it appears in a log line: escaped unless plainly printable."""
    return name if name.isprintable() else ascii(name)


class ChannelLogger(logging.Logger):
    """The lines of ``base``, each starting with ``"<channel>: "``.

    Records carry ``base``'s name and the channel as ``record.channel``;
    they go to ``base``'s handlers and up, and ``base`` decides which levels
    are enabled. The instance is not registered with :mod:`logging`, so it
    is freed with its last user.

    Parameters
    ----------
    base : logging.Logger
        A logger the application chose (e.g. ``sockproto.protocol.all_others``).
    channel : str
        The channel name (any text: escaped in the line unless printable).
    """

    def __init__(self, base: logging.Logger, channel: str) -> None:
        super().__init__(base.name)
        self.parent = base
        self.channel = channel
        self._prefix = _shown(channel)

    def isEnabledFor(self, level: int) -> bool:
        parent = self.parent
        assert parent is not None
        return parent.isEnabledFor(level)

    def getEffectiveLevel(self) -> int:
        parent = self.parent
        assert parent is not None
        return parent.getEffectiveLevel()

    def makeRecord(self, name: str, level: int, fn: str, lno: int, msg: Any, args: Any,
                   exc_info: Any, func: Optional[str] = None, extra: Any = None,
                   sinfo: Optional[str] = None) -> logging.LogRecord:
        if isinstance(args, tuple) and args:
            msg, args = "%s: " + str(msg), (self._prefix,) + args
        else:  # a message without arguments is not a format string
            msg, args = "%s: %s", (self._prefix, msg)
        record = super().makeRecord(name, level, fn, lno, msg, args, exc_info, func, extra, sinfo)
        record.channel = self.channel
        return record


def log_message(logger: logging.Logger, level: int, prefix: str, names: Tuple[Any, Any, Any],
                data: Any) -> None:
    """Log one message as ``"<prefix> status: …, service_id: …, data_id: …, data: …"``.

    Parameters
    ----------
    logger : logging.Logger
    level : int
    prefix : str
        ``"TX ->"`` or ``"RX <-"``.
    names : tuple
        Status, Service-ID and Data-ID, or their names.
    data : any
        The message data; its text is cut after 1000 characters.
    """
    if not logger.isEnabledFor(level):
        return
    text = repr(data)
    if len(text) > _LOG_DATA_CHARS:
        text = text[:_LOG_DATA_CHARS] + "..."
    logger.log(level, "%s status: %s, service_id: %s, data_id: %s, data: %s", prefix, *names, text)
