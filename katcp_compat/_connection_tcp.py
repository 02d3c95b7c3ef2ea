"""ClientConnectionTCP: katcp 0.5's connection object, built from a server and a socket."""

import socket
from typing import Any

from .core import Message

__all__ = ["ClientConnectionTCP"]


class ClientConnectionTCP:
    """The katcp 0.5 view of one client: a server and the client's socket.

    Its methods go through the server's socket API
    (``server.tcp_inform(sock, msg)``, ``tcp_reply``, ``tcp_reply_inform``),
    so a server written for 0.5 that overrides those sees every message.
    The connections the server itself hands to hooks and handlers are
    :class:`~katcp_compat.server.ClientConnection` objects (the 0.9.3 class).

    Parameters
    ----------
    server : DeviceServerBase
        The server the client is connected to.
    raw_socket : socket.socket
        The client's socket (one of ``server.get_sockets()``).
    """

    def __init__(self, server: Any, raw_socket: socket.socket) -> None:
        self._server = server
        self._sock = raw_socket

    @property
    def socket(self) -> socket.socket:
        """The client's socket."""
        return self._sock

    def inform(self, msg: Message) -> None:
        """Send an asynchronous inform to the client (``server.tcp_inform``).

        Parameters
        ----------
        msg : Message
            The inform.
        """
        self._server.tcp_inform(self._sock, msg)

    def reply_inform(self, inform: Message, orig_req: Message) -> None:
        """Send an inform belonging to a request (``server.tcp_reply_inform``).

        Parameters
        ----------
        inform : Message
            The inform; it gets the id of ``orig_req``.
        orig_req : Message
            The request.
        """
        self._server.tcp_reply_inform(self._sock, inform, orig_req)

    def reply(self, reply: Message, orig_req: Message) -> None:
        """Send the reply to a request (``server.tcp_reply``).

        Parameters
        ----------
        reply : Message
            The reply; it gets the id of ``orig_req``.
        orig_req : Message
            The request.
        """
        self._server.tcp_reply(self._sock, reply, orig_req)

    def mass_inform(self, msg: Message) -> None:
        """Send an inform to every client of the server.

        Parameters
        ----------
        msg : Message
            The inform.
        """
        self._server.mass_inform(msg)

    def __repr__(self) -> str:
        return "<ClientConnectionTCP %r>" % (self._sock,)
