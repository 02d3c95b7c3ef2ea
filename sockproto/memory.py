"""An in-memory comm pair: two connected comm instances without sockets.

Useful for tests and for running two protocol instances in one process::

    client, server = comm_pair()
    try:
        ...  # pure_json_protocol(client), pure_json_protocol(server)
    finally:
        client.close()
        server.close()

Each side has its own loop (a :class:`protocompat.netutil.SelectorLoop`
without sockets to watch) whose thread runs that side's callbacks, so a
callback of one side can send to the other without deadlock. A thread that
waits in ``receive`` or ``wait_connected`` of a side runs that side's loop
meanwhile, as with the TCP comm instances.
"""

import threading
from typing import Optional, Tuple

from protocompat.netutil import SelectorLoop

from ._commbase import _CommBase

__all__ = ["memory_comm", "comm_pair"]


class _Link:
    """The shared connection state of the two ends of a pair."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.up = False
        self.ends: Tuple["memory_comm", ...] = ()


class memory_comm(_CommBase):
    """One end of an in-memory connection, with the comm-instance interface.

    Instances are made in pairs by :func:`comm_pair`.

    Parameters
    ----------
    is_client : bool
        Value of :attr:`IS_CLIENT`.
    name : str, optional
        Name of the dispatch thread.
    """

    _LOGGER_BASE = "sockproto.memory"

    def __init__(self, is_client: bool, name: Optional[str] = None) -> None:
        super().__init__(SelectorLoop(name=name or ("memory-client" if is_client else "memory-server")))
        self.IS_CLIENT = is_client
        self._link = _Link()
        self._peer: Optional["memory_comm"] = None
        self._loop.start()

    def is_connected(self) -> bool:
        """Return True while both ends are linked.

        Returns
        -------
        connected : bool
        """
        return self._link.up

    def send(self, data: bytes, timeout: float = 1) -> bool:
        """Deliver one frame to the other end.

        Parameters
        ----------
        data : bytes
            The frame.
        timeout : float, optional
            Seconds to wait for the link to come up.

        Returns
        -------
        sent : bool
            False if the link is down (after ``timeout``).
        """
        if not self._link.up and not self.wait_connected(timeout):
            return False
        with self._link.lock:
            if not self._link.up or self._peer is None:
                return False
            self._peer._schedule(self._peer._deliver, bytes(data))
        return True

    def connect(self) -> None:
        """Bring the link up; both ends call their connect callbacks."""
        with self._link.lock:
            if self._link.up or any(end._closed for end in self._link.ends):
                return
            self._link.up = True
            for end in self._link.ends:
                end._schedule(end._set_connected)

    def disconnect(self) -> None:
        """Take the link down; both ends call their disconnect callbacks."""
        with self._link.lock:
            if not self._link.up:
                return
            self._link.up = False
            for end in self._link.ends:
                end._schedule(end._set_disconnected)

    def reconnect(self) -> None:
        """Take the link down and bring it up again."""
        self.disconnect()
        self.connect()

    def _shutdown(self) -> None:
        self.disconnect()


def comm_pair(connected: bool = True) -> Tuple[memory_comm, memory_comm]:
    """Create two linked in-memory comm instances.

    Parameters
    ----------
    connected : bool, optional
        Bring the link up at once (the connect callbacks registered later
        are then called soon after registration).

    Returns
    -------
    client, server : memory_comm
        ``client.IS_CLIENT`` is True, ``server.IS_CLIENT`` is False.
    """
    client = memory_comm(True)
    server = memory_comm(False)
    link = _Link()
    link.ends = (client, server)
    client._link = server._link = link
    client._peer, server._peer = server, client
    if connected:
        client.connect()
    return client, server
