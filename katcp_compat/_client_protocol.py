"""What a client knows of its server's KATCP version: detected from version informs, or preset.

No I/O and no threads: :class:`~katcp_compat.client.DeviceClient` feeds it the
version informs it receives.
"""

import logging
from typing import Optional

from ._futures import AsyncEvent
from ._text import to_str
from .core import (FLOAT_TS_KATCP_MAJOR, SEC_TO_MS_FAC, SEC_TS_KATCP_MAJOR, AttrDict, Message,
                   ProtocolFlags)

__all__ = ["ServerProtocol", "KEEP", "TAKE", "CHANGED"]

#: Outcomes of :meth:`ServerProtocol.offer`: nothing to do; take the flags;
#: the flags contradict those detected before (the connection must go).
KEEP, TAKE, CHANGED = range(3)
#: The flags of a KATCP v4 server, which announces no flags.
V4_FLAGS = ProtocolFlags(4, 0, "")


class ServerProtocol:
    """The protocol version and flags of a client's server, for one run of the client.

    As katcp: ``#version-connect katcp-protocol <version>`` gives the flags
    of a v5 server, ``#version`` or ``#build-state`` those of a v4 server.
    Flags preset with :meth:`preset` are kept across connections, and
    informs that disagree with them are ignored.

    Parameters
    ----------
    known : AsyncEvent
        Set while the flags are known.
    preset_flags : ProtocolFlags, optional
        Flags preset on the client (they outlive a run).
    logger : logging.Logger

    Attributes
    ----------
    flags : ProtocolFlags or None
    message_ids : bool
        Whether the server takes message ids.
    versions : AttrDict
        ``#version-connect`` contents: role -> tuple of str.
    """

    def __init__(self, known: AsyncEvent, preset_flags: Optional[ProtocolFlags],
                 logger: logging.Logger) -> None:
        self.known = known
        self._logger = logger
        self.flags: Optional[ProtocolFlags] = None
        self.message_ids = False
        self.versions = AttrDict()
        self._preset = preset_flags
        if preset_flags is not None:
            self.take(preset_flags)

    def take(self, flags: ProtocolFlags) -> None:
        """Make ``flags`` the server's flags."""
        self.flags = flags
        self.message_ids = flags.supports(ProtocolFlags.MESSAGE_IDS)
        self.known.set()

    def preset(self, flags: ProtocolFlags) -> None:
        """Assume ``flags`` from now on, across connections."""
        self._preset = flags
        self.take(flags)

    def forget(self) -> None:
        """The connection closed: flags detected on it no longer hold (preset ones do)."""
        if self._preset is None:
            self.flags = None
            self.message_ids = False
            self.known.clear()

    def offer(self, flags: ProtocolFlags, inform: Message) -> int:
        """Flags read from ``inform``: returns :data:`KEEP`, :data:`TAKE` or :data:`CHANGED`."""
        if flags == self.flags:
            return KEEP
        if self.flags is None:
            return TAKE
        if self._preset is not None:
            self._logger.warning("Ignoring %r: inconsistent with the preset protocol %s",
                                 str(inform), self.flags)
            return KEEP
        self._logger.error("Protocol version changed (%s, then %r); disconnecting",
                           self.flags, str(inform))
        return CHANGED

    def read_version_connect(self, msg: Message) -> Optional[ProtocolFlags]:
        """Record a ``#version-connect`` inform; return the flags it announces, if any."""
        if len(msg.arguments) < 2:
            return None
        role = to_str(msg.arguments[0], "replace")
        self.versions[role] = tuple(to_str(arg, "replace") for arg in msg.arguments[1:])
        if msg.arguments[0] != b"katcp-protocol":
            return None
        try:
            return ProtocolFlags.parse_version(msg.arguments[1])
        except ValueError:
            self._logger.warning("Bad katcp-protocol version %r", msg.arguments[1])
            return None

    def convert_seconds(self, time_seconds: float) -> float:
        """``time_seconds`` in the server's timestamp unit (ms before KATCP v5)."""
        major = self.flags.major  # type: ignore[union-attr]
        if major >= SEC_TS_KATCP_MAJOR:
            return time_seconds
        device_time = time_seconds * SEC_TO_MS_FAC
        if major < FLOAT_TS_KATCP_MAJOR:
            device_time = int(device_time)
        return device_time
