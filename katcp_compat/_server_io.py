"""The I/O half of a device server: one selector loop, the listener, a stream per client.

Everything here runs on the loop thread (``katcp-server-io``) unless said
otherwise; it knows KATCP only as far as framing: each client's bytes go
through a :class:`~katcp_compat.core.LineDecoder` with a parser, and each
message (or :class:`~katcp_compat.core.BadLine`) goes to the owner.
"""

import logging
import socket
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from protocompat.netutil import (Listener, OutputOverflow, PeerClosed, SelectorLoop, Stream,
                                 set_keepalive)

from ._codec import MessageParser
from ._connection import ClientConnection
from ._errors import KatcpLineTooLong
from ._line_decoder import LineDecoder
from ._text import address_to_string

__all__ = ["ServerIO", "ServedClient", "close_reason"]


class ServedClient:
    """One client of a server: its stream, its connection and its handler-queue counts.

    Attributes
    ----------
    stream : Stream
        The client's socket stream.
    connection : ClientConnection
        What request handlers and hooks see of the client.
    queued, handled : int
        Messages of this client put on the handler thread's queue, and
        finished there (each has a single writer thread).
    resume_pending : bool
        A resume of reading is on its way to the loop.
    """

    # Slots and bound methods rather than closures: a server may hold
    # thousands of clients.
    __slots__ = ("stream", "connection", "queued", "handled", "resume_pending", "_io")

    def __init__(self, io: "ServerIO") -> None:
        self._io = io
        self.stream: Stream = None  # type: ignore[assignment]  # set by the ServerIO
        self.connection: ClientConnection = None  # type: ignore[assignment]  # set by the owner
        self.queued = 0
        self.handled = 0
        self.resume_pending = False

    def deliver(self, message: Any) -> None:
        """Hand a decoded message to the server (loop thread)."""
        self._io._on_message(self, message)

    def closed(self, error: Optional[BaseException]) -> None:
        """The stream closed (loop thread)."""
        self._io._closed(self, error)


def close_reason(error: Optional[BaseException]) -> str:
    """The reason given to ``on_client_disconnect`` for a stream closed by ``error``.

    As katcp: ``Socket EOF`` when the peer closed, else the error's repr.
    """
    if error is None or isinstance(error, PeerClosed):
        return "Socket EOF"
    return repr(error)


class ServerIO:
    """Accepts clients and moves their bytes, on one :class:`~protocompat.netutil.SelectorLoop`.

    What the owner uses: :meth:`bind`, :meth:`start`, :meth:`stop`, :meth:`clients`,
    :meth:`write_all`, :meth:`close_all`, :attr:`loop`, :attr:`address`,
    :attr:`listening_socket`.

    Parameters
    ----------
    make_connection : callable
        ``make_connection(client: ServedClient, sock, address_text)`` returns
        the client's :class:`ClientConnection`; loop thread.
    on_connect : callable
        ``on_connect(client)`` once the client is among :meth:`clients` and
        read from; loop thread.
    on_message : callable
        ``on_message(client, message)`` for each Message or BadLine; loop thread.
    on_close : callable
        ``on_close(client, error)`` once per client (see :class:`Stream`).
    max_line : int
        Longest line accepted from a client; a longer one closes it.
    max_output : int
        Most bytes of unsent output per client; past it the client is dropped
        as too slow (katcp's policy), with a logged warning.
    keepalive : (int, int, int)
        TCP keep-alive of client sockets: idle seconds, probe interval, probes.
    logger : logging.Logger
    """

    def __init__(self,
                 make_connection: Callable[[ServedClient, socket.socket, str], ClientConnection],
                 on_connect: Callable[[ServedClient], None],
                 on_message: Callable[[ServedClient, Any], None],
                 on_close: Callable[[ServedClient, Optional[BaseException]], None],
                 max_line: int, max_output: int, keepalive: Tuple[int, int, int],
                 logger: logging.Logger) -> None:
        self._make_connection = make_connection
        self._on_connect = on_connect
        self._on_message = on_message
        self._on_close = on_close
        self._max_line = max_line
        self._max_output = max_output
        self._keepalive = keepalive
        self._logger = logger
        self._parser = MessageParser()
        self._clients: Dict[Stream, ServedClient] = {}
        self._lock = threading.Lock()
        self._accepting = False
        self.loop: Optional[SelectorLoop] = None
        self._listener: Optional[Listener] = None

    # -- life cycle (any thread) ----------------------------------------------
    def bind(self, host: str, port: int, backlog: int, excepthook: Any, daemon: bool) -> None:
        """Make the loop and listen on ``(host, port)``; accepting begins with :meth:`start`.

        Raises
        ------
        OSError
            If the address cannot be bound (logged as well).
        """
        loop = SelectorLoop(name="katcp-server-io", excepthook=excepthook, daemon=daemon)
        try:
            listener = Listener(loop, host, port, self._accept, backlog=backlog)
        except OSError:
            loop.stop()
            self._logger.exception("Unable to bind to %s", (host, port))
            raise
        self.loop, self._listener = loop, listener

    def start(self) -> None:
        """Start the loop thread and accept clients."""
        self._accepting = True
        self._listener.start()  # type: ignore[union-attr]
        self.loop.start()  # type: ignore[union-attr]

    @property
    def address(self) -> Tuple[str, int]:
        """The ``(host, port)`` listened on."""
        return self._listener.address  # type: ignore[union-attr]

    @property
    def listening_socket(self) -> Optional[socket.socket]:
        """The listening socket while it is open, else None."""
        listener = self._listener
        return None if listener is None or listener.closed else listener.sock

    def clients(self) -> List[ServedClient]:
        """The clients connected now; any thread."""
        with self._lock:
            return list(self._clients.values())

    def write_all(self, data: bytes) -> None:
        """Queue ``data`` for every client, sent by the loop in large writes; any thread."""
        with self._lock:
            streams = list(self._clients)
        for stream in streams:
            stream.write(data, defer=True)

    def close_all(self) -> None:
        """Stop accepting; send what each client has queued, then close it; loop thread."""
        self._accepting = False
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            clients = list(self._clients.items())
        for stream, _client in clients:
            stream.flush()
            stream.close()

    def stop(self, timeout: Optional[float]) -> bool:
        """Stop the loop; True once its thread has ended (or this is the loop thread)."""
        loop = self.loop
        return loop is None or loop.stop(timeout)

    # -- the loop thread --------------------------------------------------------
    def _accept(self, sock: socket.socket, address: Any) -> None:
        if not self._accepting:
            sock.close()
            return
        try:  # notice peers that vanish without closing (power loss, cable)
            set_keepalive(sock, *self._keepalive)
        except (OSError, NotImplementedError):
            pass
        address_text = address_to_string(address[:2])
        client = ServedClient(self)
        stream = Stream(self.loop, sock, LineDecoder(self._max_line, self._parser), client.deliver,
                        client.closed, max_output=self._max_output,
                        on_overflow=self._drop_slow_client, name=address_text)
        client.stream = stream
        client.connection = self._make_connection(client, sock, address_text)
        with self._lock:
            self._clients[stream] = client
        stream.start()
        self._on_connect(client)

    def _closed(self, client: ServedClient, error: Optional[BaseException]) -> None:
        with self._lock:
            self._clients.pop(client.stream, None)
        if isinstance(error, KatcpLineTooLong):
            self._logger.warning("Client %s sent a line longer than %d bytes; closing it",
                                 client.stream.name, self._max_line)
        elif error is not None and not isinstance(error, (PeerClosed, OutputOverflow)):
            self._logger.warning("Stream for client %s closed with error %r",
                                 client.stream.name, error)
        self._on_close(client, error)

    def _drop_slow_client(self, stream: Stream) -> None:
        # katcp's policy for a client that does not read: log and drop it.
        self._logger.warning("Client %s has more than %d bytes of unsent output; "
                             "dropping the slow client", stream.name, self._max_output)
        stream.close(OutputOverflow("more than %d bytes of output queued for %s"
                                    % (self._max_output, stream.name)))
