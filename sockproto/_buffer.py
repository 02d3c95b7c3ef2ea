"""The receive buffer of a protocol instance: messages kept for ``receive()``.

Bounded three ways:

* per (Service-ID, Data-ID) and connection, by a number of messages: the
  connection's oldest message of that pair makes room for the new one;
* per connection, by bytes: a message that does not fit is refused;
* in total, by bytes: likewise.

A message costs its frame size plus :data:`MESSAGE_OVERHEAD`. Each
connection has an :class:`Account`; :meth:`ReceiveBuffer.discard` drops
what a connection has buffered, without touching the messages of others.
"""

import collections
import functools
import operator
import threading
import time
from typing import Callable, Deque, Dict, Optional, Tuple

from .storage import data_storage

__all__ = ["Account", "ReceiveBuffer", "MESSAGE_OVERHEAD",
           "STORED", "STORED_OLDEST_DROPPED", "REFUSED_CONNECTION_FULL", "REFUSED_BUFFER_FULL"]

#: Bytes a buffered message costs on top of its frame size (the message object).
MESSAGE_OVERHEAD = 512

# Results of ReceiveBuffer.put.
#: The message was stored.
STORED = 0
#: The message was stored; the connection's oldest message of its pair was dropped for it.
STORED_OLDEST_DROPPED = 1
#: Refused: the connection's share of the buffer is full.
REFUSED_CONNECTION_FULL = 2
#: Refused: the buffer is full.
REFUSED_BUFFER_FULL = 3

Key = Tuple[int, int]


class Account:
    """What one connection has in the buffer (made by :meth:`ReceiveBuffer.open_account`)."""

    __slots__ = ("size", "keys")

    def __init__(self) -> None:
        #: Bytes buffered (frame sizes plus overhead).
        self.size = 0
        #: Messages buffered per (service_id, data_id).
        self.keys: Dict[Key, int] = {}


# One buffered message: (message, its connection's account, its cost in bytes).
_Entry = Tuple[data_storage, Account, int]


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise ValueError("%s must be at least 1, not %r" % (name, value))
    return value


class ReceiveBuffer:
    """Messages waiting for ``receive()``, in arrival order per (Service-ID, Data-ID).

    Parameters
    ----------
    max_per_key : int
        Messages kept per (service_id, data_id) and connection.
    max_bytes_per_connection : int
        Bytes kept per connection.
    max_bytes : int
        Bytes kept in total.
    """

    def __init__(self, max_per_key: int, max_bytes_per_connection: int, max_bytes: int) -> None:
        self.max_per_key = _positive("max_per_key", max_per_key)
        self.max_bytes_per_connection = _positive("max_bytes_per_connection", max_bytes_per_connection)
        self.max_bytes = _positive("max_bytes", max_bytes)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # taken as _lock where nobody waits
        self._queues: Dict[Key, Deque[_Entry]] = {}
        self._size = 0
        # Threads waiting in take(): only then does put() notify.
        self._waiting = 0

    @property
    def size(self) -> int:
        """Bytes buffered in total."""
        return self._size

    @staticmethod
    def open_account() -> Account:
        """A new, empty account for one connection."""
        return Account()

    def put(self, account: Account, key: Key, msg: data_storage, frame_size: int) -> int:
        """Keep ``msg`` (received on the connection of ``account``) for :meth:`take`.

        Parameters
        ----------
        account : Account
        key : tuple
            The message's (service_id, data_id).
        msg : data_storage
        frame_size : int
            Size of the frame the message came in.

        Returns
        -------
        result : int
            STORED, STORED_OLDEST_DROPPED, REFUSED_CONNECTION_FULL or REFUSED_BUFFER_FULL.
        """
        cost = frame_size + MESSAGE_OVERHEAD
        keys = account.keys
        with self._lock:
            queue = self._queues.get(key)
            if queue is None:  # the common case: no message of the key waits
                if account.size + cost > self.max_bytes_per_connection:
                    return REFUSED_CONNECTION_FULL
                if self._size + cost > self.max_bytes:
                    return REFUSED_BUFFER_FULL
                self._queues[key] = collections.deque(((msg, account, cost),))
                account.size += cost
                keys[key] = 1
                self._size += cost
                if self._waiting:
                    self._cond.notify_all()
                return STORED
            oldest = -1
            freed = 0
            if queue is not None and keys.get(key, 0) >= self.max_per_key:
                oldest = self._index_of_oldest(queue, account)
                freed = queue[oldest][2]
            if account.size - freed + cost > self.max_bytes_per_connection:
                return REFUSED_CONNECTION_FULL
            if self._size - freed + cost > self.max_bytes:
                return REFUSED_BUFFER_FULL
            if oldest >= 0:
                entry = queue[oldest]  # type: ignore[index]
                del queue[oldest]  # type: ignore[union-attr]
                self._forget(entry, key)
            if queue is None:
                queue = self._queues[key] = collections.deque()
            queue.append((msg, account, cost))
            account.size += cost
            keys[key] = keys.get(key, 0) + 1
            self._size += cost
            if self._waiting:
                self._cond.notify_all()
        return STORED if oldest < 0 else STORED_OLDEST_DROPPED

    @staticmethod
    def _index_of_oldest(queue: Deque[_Entry], account: Account) -> int:
        """Index of the account's first entry (it has one: its count of the key is > 0)."""
        for index, entry in enumerate(queue):
            if entry[1] is account:
                return index
        raise AssertionError("account has no entry in the queue")  # pragma: no cover

    def _forget(self, entry: _Entry, key: Key) -> None:
        """Take ``entry`` (removed from its queue) off the books."""
        account, cost = entry[1], entry[2]
        account.size -= cost
        left = account.keys[key] - 1
        if left:
            account.keys[key] = left
        else:
            del account.keys[key]
        self._size -= cost

    def predicate_for(self, key: Key) -> Callable[[], bool]:
        """A predicate, true while a message of ``key`` is buffered, for a loop's ``wait_for``.

        It takes no lock and runs no Python code (a C-level ``key in dict``).
        """
        return functools.partial(operator.contains, self._queues, key)

    def pop(self, key: Key) -> Optional[data_storage]:
        """Remove and return the oldest message of ``key``, or None at once."""
        if key not in self._queues:
            return None
        with self._lock:
            return self._pop(key)

    def _pop(self, key: Key) -> Optional[data_storage]:
        """The oldest message of ``key`` removed and off the books, or None (hold ``_lock``)."""
        queue = self._queues.get(key)
        if queue is None:
            return None
        msg, account, cost = queue.popleft()
        if not queue:
            del self._queues[key]
        account.size -= cost
        self._size -= cost
        keys = account.keys
        left = keys[key] - 1
        if left:
            keys[key] = left
        else:
            del keys[key]
        return msg

    def take(self, key: Key, timeout: float) -> Optional[data_storage]:
        """Remove and return the oldest message of ``key``, waiting up to ``timeout`` seconds.

        Returns
        -------
        msg : data_storage or None
            None if no such message arrived in time.
        """
        deadline = None
        with self._cond:
            while True:
                msg = self._pop(key)
                if msg is not None:
                    return msg
                if deadline is None:
                    deadline = time.monotonic() + max(0.0, timeout)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._waiting += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiting -= 1

    def discard(self, account: Account) -> int:
        """Drop every message of ``account``'s connection; return how many."""
        dropped = 0
        with self._lock:
            for key in list(account.keys):
                queue = self._queues.get(key)
                if queue is None:
                    continue
                kept = collections.deque(entry for entry in queue if entry[1] is not account)
                dropped += len(queue) - len(kept)
                for entry in queue:
                    if entry[1] is account:
                        self._size -= entry[2]
                if kept:
                    self._queues[key] = kept
                else:
                    del self._queues[key]
            account.keys.clear()
            account.size = 0
        return dropped
