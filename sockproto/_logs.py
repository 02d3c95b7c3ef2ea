"""Log helpers: lines tagged with a channel name, and the TX/RX message lines.

The :mod:`logging` module keeps every logger it ever made, so a logger per
name a peer chooses would grow without bound. A name that comes from a peer
is therefore carried by a :class:`ChannelLogger` around a logger the
application chose; it goes away with the connection.
"""

import logging
from typing import Any, MutableMapping, Tuple, Union

__all__ = ["ChannelLogger", "LoggerLike", "log_message"]

# Longest data text in a TX/RX log line.
_LOG_DATA_CHARS = 1000

LoggerLike = Union[logging.Logger, logging.LoggerAdapter]


def _shown(name: str) -> str:
    """``name`` as it appears in a log line: escaped unless plainly printable."""
    return name if name.isprintable() else ascii(name)


class ChannelLogger(logging.LoggerAdapter):
    """Log lines of ``logger`` that start with ``"<channel>: "``.

    The records also carry the name as ``record.channel``.

    Parameters
    ----------
    logger : logging.Logger
        Where the lines go.
    channel : str
        The channel name (any text: it is escaped in the line if it is not
        printable).
    """

    def __init__(self, logger: logging.Logger, channel: str) -> None:
        super().__init__(logger, {"channel": channel})
        self.channel = channel
        self._prefix = _shown(channel)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> Tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = self.extra
        return msg, kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        msg, kwargs = self.process(msg, kwargs)
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1  # the caller, not this method
        if args:
            self.logger.log(level, "%s: " + str(msg), self._prefix, *args, **kwargs)
        else:  # a message without arguments is not a format string
            self.logger.log(level, "%s: %s", self._prefix, msg, **kwargs)


def log_message(logger: LoggerLike, level: int, prefix: str, names: Tuple[Any, Any, Any],
                data: Any) -> None:
    """Log one message as ``"<prefix> status: …, service_id: …, data_id: …, data: …"``.

    Parameters
    ----------
    logger : logging.Logger or logging.LoggerAdapter
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
