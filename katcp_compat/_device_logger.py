"""DeviceLogger: ``#log`` informs to every client of a device server."""

import logging
from typing import Any, Optional

from ._text import to_str
from .core import FailReply, Message

_LEVEL_TO_PYTHON = {b"trace": 0, b"debug": logging.DEBUG, b"info": logging.INFO,
                    b"warn": logging.WARN, b"error": logging.ERROR, b"fatal": logging.FATAL}


class DeviceLogger:
    """Logs messages of a device server as ``#log`` informs to all clients.

    Parameters
    ----------
    device_server : DeviceServerBase
        The server whose clients receive the log informs.
    root_logger : str
        Logger name used when a call gives none.
    python_logger : logging.Logger, optional
        Also log every message (whatever the KATCP level) to this logger.
    """

    ALL, TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF = range(8)
    #: Level names, indexed by level value.
    LEVELS = ["all", "trace", "debug", "info", "warn", "error", "fatal", "off"]
    #: KATCP level to Python logging level.
    PYTHON_LEVEL = {TRACE: 0, DEBUG: logging.DEBUG, INFO: logging.INFO, WARN: logging.WARN,
                    ERROR: logging.ERROR, FATAL: logging.FATAL, OFF: logging.FATAL + 10}

    def __init__(self, device_server: Any, root_logger: str = "root",
                 python_logger: Optional[logging.Logger] = None) -> None:
        self._device_server = device_server
        self._python_logger = python_logger
        self._log_level = self.WARN
        self._root_logger_name = root_logger

    def level_name(self, level: Optional[int] = None) -> str:
        """Return the name of ``level`` (default: the current level).

        Parameters
        ----------
        level : int, optional
            A level constant.

        Returns
        -------
        level_name : str
        """
        if level is None:
            level = self._log_level
        return self.LEVELS[level]

    def level_from_name(self, level_name: Any) -> int:
        """Return the level constant for a name.

        Parameters
        ----------
        level_name : str or bytes
            ``all``, ``trace``, ... ``off``.

        Returns
        -------
        level : int

        Raises
        ------
        ValueError
            If the name is unknown.
        """
        level_name = to_str(level_name, "replace")
        try:
            return self.LEVELS.index(level_name)
        except ValueError:
            raise ValueError("Unknown logging level name '%s'" % (level_name,)) from None

    def set_log_level(self, level: int) -> None:
        """Set the level below which messages are not sent to clients.

        Parameters
        ----------
        level : int
            A level constant.
        """
        self._log_level = level
        if self._python_logger is not None:
            python_level = self.PYTHON_LEVEL.get(level)
            if python_level is None:
                raise FailReply("Unknown logging level '%s'" % (level,))
            self._python_logger.setLevel(python_level)

    def set_log_level_by_name(self, level_name: Any) -> None:
        """Set the level by name.

        Parameters
        ----------
        level_name : str or bytes
            A level name.

        Raises
        ------
        ValueError
            If the name is unknown.
        """
        self.set_log_level(self.level_from_name(level_name))

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` and send it to all clients if ``level`` is enabled.

        Parameters
        ----------
        level : int
            A level constant.
        msg : str
            Format string.
        *args
            Format arguments.
        **kwargs
            ``name`` (logger name, default the root name) and ``timestamp``
            (seconds, default now).
        """
        timestamp = kwargs.get("timestamp")
        if self._python_logger is not None:
            python_msg = msg
            if timestamp is not None:
                python_msg = "katcp timestamp: %r %s" % (timestamp, python_msg)
            self._python_logger.log(self.PYTHON_LEVEL[level], python_msg, *args)
        if level >= self._log_level:
            name = kwargs.get("name")
            if name is None:
                name = self._root_logger_name
            try:
                text = msg % args
            except TypeError:
                text = ("%s %s" % (msg, args if args else "")).strip()
            self._device_server.mass_inform(self._device_server.create_log_inform(
                self.level_name(level), text, name, timestamp=timestamp))

    def trace(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log a trace message."""
        self.log(self.TRACE, msg, *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log a debug message."""
        self.log(self.DEBUG, msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log an info message."""
        self.log(self.INFO, msg, *args, **kwargs)

    def warn(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log a warning message."""
        self.log(self.WARN, msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log an error message."""
        self.log(self.ERROR, msg, *args, **kwargs)

    def fatal(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log a fatal error message."""
        self.log(self.FATAL, msg, *args, **kwargs)

    @classmethod
    def log_to_python(cls, logger: logging.Logger, msg: Message) -> None:
        """Log a ``#log`` inform received from a device to a Python logger.

        Parameters
        ----------
        logger : logging.Logger
            Target logger.
        msg : Message
            A ``#log level timestamp name text`` inform.
        """
        level, timestamp, name, text = tuple(msg.arguments)
        logger.log(_LEVEL_TO_PYTHON[level], "%s %s: %s", to_str(timestamp, "replace"),
                   to_str(name, "replace"), to_str(text, "replace"))
