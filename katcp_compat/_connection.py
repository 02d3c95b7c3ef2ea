"""Server-side views of one client: :class:`ClientConnection` and
:class:`ClientRequestConnection`."""

import socket
from typing import Any, Callable, List, Optional

from .core import Message

__all__ = ["ClientConnection", "ClientRequestConnection"]

#: ``write(data, defer)``: queue bytes for the client; False once it is closed.
Write = Callable[[bytes, bool], bool]


class ClientConnection:
    """The connection between one client and a device server.

    All methods are thread-safe: messages are written straight to the
    client's socket, or queued for the server's I/O thread when the socket
    cannot take them at once.

    The server builds one per client from callables (katcp 0.9.3 builds its
    own from the methods of its I/O backend); code that wants a connection of
    its own, say in tests, passes its own.

    Parameters
    ----------
    write : callable
        ``write(data: bytes, defer: bool) -> bool`` queues bytes for the
        client and returns False once it is closed; ``defer=True`` leaves the
        sending to the server's I/O thread.
    address : str
        The client's address as ``host:port``.
    disconnect : callable
        ``disconnect(connection, reason)`` closes the connection through the
        server (see :meth:`disconnect`).
    mass_inform : callable
        ``mass_inform(msg)`` sends an inform to every client of the server.
    sock : socket.socket, optional
        The client's socket (katcp 0.5 servers keyed clients by socket).
    """

    # A __dict__ slot keeps arbitrary attributes possible (as on katcp's
    # connections) while a connection that sets none holds no dict.
    __slots__ = ("_write", "_address", "_disconnect", "_mass_inform", "_sock",
                 "_disconnect_called", "__dict__", "__weakref__")

    def __init__(self, write: Write, address: str,
                 disconnect: Callable[["ClientConnection", str], Any],
                 mass_inform: Callable[[Message], Any],
                 sock: Optional[socket.socket] = None) -> None:
        self._write = write
        self._address = address
        self._disconnect = disconnect
        self._mass_inform = mass_inform
        self._sock = sock
        self._disconnect_called = False

    @property
    def address(self) -> str:
        """The client's address as ``host:port``."""
        return self._address

    @property
    def socket(self) -> Optional[socket.socket]:
        """The client's socket (katcp 0.5 servers keyed clients by socket)."""
        return self._sock

    @property
    def client_disconnect_called(self) -> bool:
        """Whether ``on_client_disconnect`` has been called for this client."""
        return self._disconnect_called

    def on_client_disconnect_was_called(self) -> None:
        """Record that ``on_client_disconnect`` ran; a second call raises.

        Raises
        ------
        RuntimeError
            If it was recorded before.
        """
        if self._disconnect_called:
            raise RuntimeError('"on_client_disconnect" already called for this connection')
        self._disconnect_called = True

    def _send(self, msg: Message) -> bool:
        return self._write(bytes(msg) + b"\n", False)

    def _write_deferred(self, line: bytes) -> bool:
        """Queue a ready-made line (with its end-of-line) for the I/O thread to
        send (bursts of them then leave in a few large writes)."""
        return self._write(line, True)

    def _send_many(self, msgs: List[Message]) -> bool:
        """Send several messages with one write."""
        return self._write(b"".join(bytes(msg) + b"\n" for msg in msgs), False)

    def inform(self, msg: Message) -> bool:
        """Send an asynchronous inform to this client.

        Parameters
        ----------
        msg : Message
            An inform message.

        Returns
        -------
        sent : bool
            False if the connection is closed.
        """
        assert msg.mtype == Message.INFORM
        return self._send(msg)

    def reply_inform(self, inform: Message, orig_req: Message) -> bool:
        """Send an inform that belongs to a request; it gets the request's id.

        Parameters
        ----------
        inform : Message
            An inform with the request's name.
        orig_req : Message
            The request being answered.

        Returns
        -------
        sent : bool
            False if the connection is closed.
        """
        assert inform.mtype == Message.INFORM
        assert inform.name == orig_req.name
        inform.mid = orig_req.mid
        return self._send(inform)

    def reply(self, reply: Message, orig_req: Message) -> bool:
        """Send the reply to a request; it gets the request's id.

        Parameters
        ----------
        reply : Message
            A reply with the request's name.
        orig_req : Message
            The request being answered.

        Returns
        -------
        sent : bool
            False if the connection is closed.
        """
        assert reply.mtype == Message.REPLY
        assert reply.name == orig_req.name
        reply.mid = orig_req.mid
        return self._send(reply)

    def mass_inform(self, msg: Message) -> None:
        """Send an inform to every client of the server.

        Parameters
        ----------
        msg : Message
            An inform message.
        """
        assert msg.mtype == Message.INFORM
        self._mass_inform(msg)

    def disconnect(self, reason: str) -> None:
        """Close this connection, telling the server why.

        Parameters
        ----------
        reason : str
            Passed to the server's ``on_client_disconnect``.
        """
        self._disconnect(self, reason)

    def __repr__(self) -> str:
        return "<ClientConnection %s>" % self._address


class ClientRequestConnection:
    """One request together with the connection it came from.

    Request handlers receive this as ``req``.

    Parameters
    ----------
    client_connection : ClientConnection
        The connection the request came from.
    req_msg : Message
        The request.
    """

    def __init__(self, client_connection: ClientConnection, req_msg: Message) -> None:
        assert req_msg.mtype == Message.REQUEST
        self.client_connection = client_connection
        self.msg = req_msg
        self.mass_inform = client_connection.mass_inform
        self._replied = False

    def inform(self, *args: Any) -> bool:
        """Send an inform with the request's name and id.

        Parameters
        ----------
        *args
            Inform arguments.

        Raises
        ------
        RuntimeError
            If the reply has already been sent.
        """
        if self._replied:
            return self.inform_after_reply(*args)
        return self.client_connection.inform(Message.reply_inform(self.msg, *args))

    def reply(self, *args: Any) -> bool:
        """Send the reply; may be called once.

        Parameters
        ----------
        *args
            Reply arguments (``"ok"``, ...).

        Raises
        ------
        RuntimeError
            If the reply has already been sent.
        """
        if self._replied:
            return self.reply_again(*args)
        self._replied = True
        return self.client_connection.reply(Message.reply_to_request(self.msg, *args), self.msg)

    def reply_with_message(self, rep_msg: Message) -> bool:
        """Send a ready-made reply message; may be called once.

        Parameters
        ----------
        rep_msg : Message
            A reply with the request's name.

        Raises
        ------
        RuntimeError
            If the reply has already been sent.
        """
        if self._replied:
            return self.reply_again(rep_msg)
        self._replied = True
        return self.client_connection.reply(rep_msg, self.msg)

    def reply_again(self, *args: Any) -> bool:
        """Called for a second reply to the same request.

        Raises
        ------
        RuntimeError
            Always: a request gets one reply.
        """
        raise RuntimeError("Reply to request %r already sent." % self.msg)

    def inform_after_reply(self, *args: Any) -> bool:
        """Called for an inform after the reply was sent.

        Raises
        ------
        RuntimeError
            Always: informs of a request come before its reply.
        """
        raise RuntimeError("Cannot send inform for request %r after sending reply." % self.msg)

    def make_reply(self, *args: Any) -> Message:
        """Build (without sending) the reply to return from a handler.

        Parameters
        ----------
        *args
            Reply arguments.

        Returns
        -------
        reply : Message
            A reply with the request's name and id.
        """
        return Message.reply_to_request(self.msg, *args)

    @property
    def replied(self) -> bool:
        """Whether the reply has been sent."""
        return self._replied
