"""Message dispatch and sending for DeviceServerBase (the parts without sockets)."""

import concurrent.futures
import logging
import socket
import sys
import time
import traceback
from typing import Any, Dict, List, Optional

from ._connection import ClientConnection, ClientRequestConnection
from .core import SEC_TS_KATCP_MAJOR, AsyncReply, FailReply, Message


class ServerMessagesMixin:
    """Dispatch of client messages to ``request_*``/``inform_*``/``reply_*``
    handlers, the sending API and the katcp 0.5 per-socket API (mixed into
    :class:`~katcp_compat.server.DeviceServerBase`)."""

    _logger: logging.Logger
    _tb_limit: int

    # ------------------------------------------------------------------ dispatch
    def on_message(self, client_conn: ClientConnection, msg: Message) -> None:
        """Called on the handler thread for every message from a client.

        Parameters
        ----------
        client_conn : ClientConnection
            The sender.
        msg : Message
            The message.
        """
        self.handle_message(client_conn, msg)

    def handle_message(self, client_conn: ClientConnection, msg: Message) -> None:
        """Handle messages of all types from clients.

        Parameters
        ----------
        client_conn : ClientConnection
            The sender.
        msg : Message
            The message.
        """
        if msg.mtype == Message.REQUEST:
            self.handle_request(client_conn, msg)
        elif msg.mtype == Message.INFORM:
            self.handle_inform(client_conn, msg)
        elif msg.mtype == Message.REPLY:
            self.handle_reply(client_conn, msg)
        else:
            reason = "Unexpected message type received by server ['%s']." % (msg,)
            client_conn.inform(self.create_log_inform("error", reason, "root"))

    def handle_request(self, connection: ClientConnection, msg: Message) -> None:
        """Dispatch a request to its ``request_*`` method and send the reply.

        Parameters
        ----------
        connection : ClientConnection
            The sender.
        msg : Message
            The request.
        """
        handler = self._request_handlers.get(msg.name)
        if handler is None:
            self._logger.error("%s INVALID: Unknown request.", msg.name)
            connection.reply(Message.reply(msg.name, "invalid", "Unknown request."), msg)
            return
        req = ClientRequestConnection(connection, msg)
        try:
            reply = handler(self, req, msg)
        except AsyncReply:
            return
        except FailReply as exc:
            reason = str(exc)
            self._logger.error("Request %s FAIL: %s", msg.name, reason)
            reply = Message.reply(msg.name, "fail", reason)
        except Exception:
            reply = self.create_exception_reply_and_log(msg, sys.exc_info())
        if isinstance(reply, concurrent.futures.Future):
            reply.add_done_callback(lambda fut: self._reply_from_future(connection, msg, fut))
            return
        if reply is None:
            if not req.replied:
                self._logger.warning("Request %s handler returned no reply", msg.name)
            return
        connection.reply(reply, msg)

    def _reply_from_future(self, connection: ClientConnection, msg: Message,
                           fut: "concurrent.futures.Future[Any]") -> None:
        try:
            reply = fut.result()
        except AsyncReply:
            return
        except FailReply as exc:
            reply = Message.reply(msg.name, "fail", str(exc))
        except Exception:
            reply = self.create_exception_reply_and_log(msg, sys.exc_info())
        if reply is not None:
            connection.reply(reply, msg)

    def create_exception_reply_and_log(self, req_msg: Message, exc_info: tuple) -> Message:
        """Build a ``fail`` reply carrying the traceback of ``exc_info``.

        Parameters
        ----------
        req_msg : Message
            The failed request.
        exc_info : tuple
            ``sys.exc_info()`` of the error.

        Returns
        -------
        reply : Message
        """
        reason = "\n".join(traceback.format_exception(*exc_info, limit=self._tb_limit))
        self._logger.error("Request %s FAIL: %s", req_msg.name, reason)
        return Message.reply(req_msg.name, "fail", reason)

    def _handle_other(self, handlers: Dict[str, Any], kind: str, connection: ClientConnection,
                      msg: Message) -> None:
        handler = handlers.get(msg.name)
        if handler is None:
            self._logger.warning("%s INVALID: Unknown %s.", msg.name, kind)
            return
        try:
            handler(self, connection, msg)
        except Exception:
            reason = "\n".join(traceback.format_exception(*sys.exc_info(), limit=self._tb_limit))
            self._logger.error("%s %s FAIL: %s", kind.capitalize(), msg.name, reason)

    def handle_inform(self, connection: ClientConnection, msg: Message) -> None:
        """Dispatch an inform from a client to its ``inform_*`` method.

        Parameters
        ----------
        connection : ClientConnection
            The sender.
        msg : Message
            The inform.
        """
        self._handle_other(self._inform_handlers, "inform", connection, msg)

    def handle_reply(self, connection: ClientConnection, msg: Message) -> None:
        """Dispatch a reply from a client to its ``reply_*`` method.

        Parameters
        ----------
        connection : ClientConnection
            The sender.
        msg : Message
            The reply.
        """
        self._handle_other(self._reply_handlers, "reply", connection, msg)

    # ------------------------------------------------------------------ sending
    @staticmethod
    def _plain(connection: Any) -> ClientConnection:
        if isinstance(connection, ClientRequestConnection):
            return connection.client_connection
        return connection

    def inform(self, connection: ClientConnection, msg: Message) -> None:
        """Send an asynchronous inform to one client.

        Parameters
        ----------
        connection : ClientConnection
            The receiver.
        msg : Message
            An inform.
        """
        self._plain(connection).inform(msg)

    def reply(self, connection: ClientConnection, reply: Message, orig_req: Message) -> None:
        """Send a reply to an earlier request (e.g. after :class:`AsyncReply`).

        Parameters
        ----------
        connection : ClientConnection
            The receiver.
        reply : Message
            The reply; it gets the id of ``orig_req``.
        orig_req : Message
            The request.
        """
        self._plain(connection).reply(reply, orig_req)

    def reply_inform(self, connection: ClientConnection, inform: Message, orig_req: Message) -> None:
        """Send an inform belonging to an earlier request.

        Parameters
        ----------
        connection : ClientConnection
            The receiver.
        inform : Message
            The inform; it gets the id of ``orig_req``.
        orig_req : Message
            The request.
        """
        self._plain(connection).reply_inform(inform, orig_req)

    def mass_inform(self, msg: Message) -> None:
        """Send an inform to every connected client.

        Parameters
        ----------
        msg : Message
            An inform.
        """
        assert msg.mtype == Message.INFORM
        data = bytes(msg) + b"\n"
        with self._conn_lock:
            streams = list(self._connections)
        for stream in streams:
            stream.write(data, defer=True)

    def create_log_inform(self, level_name: str, msg: str, name: str,
                          timestamp: Optional[float] = None) -> Message:
        """Build a ``#log`` inform.

        Parameters
        ----------
        level_name : str
            ``error``, ``warn``, ...
        msg : str
            The text.
        name : str
            The logger name.
        timestamp : float, optional
            Seconds since the epoch (default: now).

        Returns
        -------
        inform : Message
        """
        if timestamp is None:
            timestamp = time.time()
        if self.PROTOCOL_INFO.major >= SEC_TS_KATCP_MAJOR:
            ts = "%.6f" % timestamp
        else:
            ts = str(int(timestamp * 1000))
        return Message.inform("log", level_name, ts, name, msg)

    # ------------------------------------------------------------------ hooks
    def on_client_connect(self, conn: ClientConnection) -> None:
        """Called on the handler thread when a client connects.

        Parameters
        ----------
        conn : ClientConnection
            The new client.
        """

    def on_client_disconnect(self, conn: ClientConnection, msg: str, connection_valid: bool) -> None:
        """Called on the handler thread before a client connection is closed.

        Parameters
        ----------
        conn : ClientConnection
            The client.
        msg : str
            Why it is disconnected.
        connection_valid : bool
            Whether messages can still be sent to it.
        """

    # ------------------------------------------------------------------ katcp 0.5 socket API
    def get_sockets(self) -> List[socket.socket]:
        """The sockets of all connected clients.

        Returns
        -------
        sockets : list of socket.socket
        """
        with self._conn_lock:
            return [stream.sock for stream in self._connections]

    def _conn_for_sock(self, sock: socket.socket) -> Optional[ClientConnection]:
        with self._conn_lock:
            for stream, conn in self._connections.items():
                if stream.sock is sock:
                    return conn
        return None

    def _send_message(self, sock: Any, msg: Message) -> None:
        """Send any message to the client on ``sock`` (katcp 0.5's private method).

        Legacy: kept because 0.5 code calls it. A closed or unknown client is
        skipped, as 0.5 dropped failed sends.

        Parameters
        ----------
        sock : socket.socket or ClientConnection
            One of :meth:`get_sockets`, or a connection.
        msg : Message
            The message, sent as it is.
        """
        conn = sock if isinstance(sock, ClientConnection) else self._conn_for_sock(sock)
        if conn is not None:
            conn._send(msg)

    def tcp_inform(self, sock: socket.socket, msg: Message) -> None:
        """Send an inform to the client on ``sock`` (katcp 0.5).

        Parameters
        ----------
        sock : socket.socket
            One of :meth:`get_sockets`.
        msg : Message
            An inform.
        """
        conn = self._conn_for_sock(sock)
        if conn is not None:
            conn.inform(msg)

    def tcp_reply(self, sock: socket.socket, reply: Message, orig_req: Message) -> None:
        """Send a reply to the client on ``sock`` (katcp 0.5).

        Parameters
        ----------
        sock : socket.socket
            One of :meth:`get_sockets`.
        reply : Message
            The reply.
        orig_req : Message
            The request.
        """
        conn = self._conn_for_sock(sock)
        if conn is not None:
            conn.reply(reply, orig_req)

    def tcp_reply_inform(self, sock: socket.socket, inform: Message, orig_req: Message) -> None:
        """Send a request's inform to the client on ``sock`` (katcp 0.5).

        Parameters
        ----------
        sock : socket.socket
            One of :meth:`get_sockets`.
        inform : Message
            The inform.
        orig_req : Message
            The request.
        """
        conn = self._conn_for_sock(sock)
        if conn is not None:
            conn.reply_inform(inform, orig_req)
