"""Threads, sockets, the loop and its timers: what the protocol packages share.

Nothing here knows about a protocol; only the standard library is imported.

Contents
--------
ExcepthookThread
    A thread whose unhandled exceptions go to ``excepthook(etype, value, tb)``
    (inherited from the creating thread), with ``stop(timeout)``.
WakeupSocket
    A connected pair of loopback sockets; ``wake()`` from any thread makes a
    ``select`` on ``fileno()`` return.
SelectorLoop, TimerHandle, call_later_shared
    One thread that owns a selector and the project's only timer heap, with
    thread-safe ``call_soon``, ``call_later`` and ``call_at``.
Stream, Producer, PeerClosed, OutputOverflow
    One non-blocking connection: a decoder turns bytes into messages on the
    loop thread; ``write`` is safe from any thread; output is bounded.
Listener, Connector
    Accepting without a fixed connection cap, surviving descriptor shortage;
    connecting with a timeout, retries and backoff.
configure_socket, set_keepalive, get_ip_address, loopback_listener, LOOPBACK
    Socket options in one place, and small address helpers.
EVENT_READ, EVENT_WRITE, EVENT_READ_WRITE
    Selector event masks.
"""

from ._loop import (EVENT_READ, EVENT_READ_WRITE, EVENT_WRITE, SelectorLoop, TimerHandle,
                    call_later_shared)
from ._sockets import (DEFAULT_CONNECT_TIMEOUT, Connector, Listener, configure_socket,
                       get_ip_address, loopback_listener, set_keepalive)
from ._stream import (DEFAULT_MAX_OUTPUT, DEFAULT_RECV_SIZE, OutputOverflow, PeerClosed,
                      Producer, Stream)
from ._threads import LOOPBACK, Excepthook, ExcepthookThread, WakeupSocket

__all__ = [
    "ExcepthookThread",
    "Excepthook",
    "WakeupSocket",
    "SelectorLoop",
    "TimerHandle",
    "call_later_shared",
    "Stream",
    "Producer",
    "PeerClosed",
    "OutputOverflow",
    "Listener",
    "Connector",
    "configure_socket",
    "set_keepalive",
    "get_ip_address",
    "loopback_listener",
    "LOOPBACK",
    "EVENT_READ",
    "EVENT_WRITE",
    "EVENT_READ_WRITE",
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_RECV_SIZE",
    "DEFAULT_CONNECT_TIMEOUT",
]
