"""The standard requests of DeviceServer that do not involve sensors."""

from typing import Any, Callable, Dict, Optional, Set, Tuple

from .core import FailReply, Message, ProtocolFlags
from .kattypes import has_katcp_protocol_flags, minimum_katcp_version
from ._text import to_str
from .version import LIBRARY_VERSION


class BasicRequestsMixin:
    """``?halt``, ``?help``, ``?request-timeout-hint``, ``?log-level``,
    ``?restart``, ``?client-list``, ``?version-list`` and ``?watchdog``
    (mixed into :class:`~katcp_compat.server.DeviceServer`)."""

    # What the server these requests are mixed into provides.
    PROTOCOL_INFO: ProtocolFlags
    _request_handlers: Dict[str, Callable[..., Any]]
    _restart_queue: Any
    _state_lock: Any
    _client_conns: Set[Any]
    log: Any
    extra_versions: Dict[str, Tuple[str, Optional[str]]]
    stop: Callable[..., bool]
    build_state: Callable[[], str]
    version: Callable[[], str]

    def request_halt(self, req: Any, msg: Message) -> None:
        """Halt the device server.

        Returns
        -------
        success : {'ok', 'fail'}
            Whether scheduling the halt succeeded.

        Examples
        --------
        ::

            ?halt
            !halt ok
        """
        req.reply("ok")
        self.stop(timeout=None)

    def request_help(self, req: Any, msg: Message) -> Message:
        """Return help on the available requests.

        Sends one ``#help`` inform per request with its description.

        Parameters
        ----------
        request : str, optional
            Name of the request to describe (default: all requests).

        Informs
        -------
        request : str
            The request's name.
        description : str
            Its documentation.

        Returns
        -------
        success : {'ok', 'fail'}
            Whether sending the help succeeded.
        informs : int
            Number of ``#help`` informs sent.

        Examples
        --------
        ::

            ?help
            #help halt ...description...
            #help help ...description...
            ...
            !help ok 5

            ?help halt
            #help halt ...description...
            !help ok 1
        """
        if not msg.arguments:
            for name, method in sorted(self._request_handlers.items()):
                req.inform(name, method.__doc__)
            return req.make_reply("ok", str(len(self._request_handlers)))
        name = to_str(msg.arguments[0], "replace")
        handler = self._request_handlers.get(name)
        if handler is None:
            return req.make_reply("fail", "Unknown request method.")
        req.inform(name, (handler.__doc__ or "").strip())
        return req.make_reply("ok", "1")

    @has_katcp_protocol_flags([ProtocolFlags.REQUEST_TIMEOUT_HINTS])
    def request_request_timeout_hint(self, req: Any, msg: Message) -> Message:
        """Return timeout hints for requests.

        Some requests are slow; a hint tells clients what timeout to use.

        Parameters
        ----------
        request : str, optional
            Request to give the hint for (default: every request that has
            a hint).

        Informs
        -------
        request : str
            Name of the request.
        suggested_timeout : float
            Suggested timeout in seconds (0: no hint).

        Returns
        -------
        success : {'ok', 'fail'}
            Whether sending the hints succeeded.
        informs : int
            Number of ``#request-timeout-hint`` informs sent.

        Examples
        --------
        ::

            ?request-timeout-hint
            #request-timeout-hint very-slow-request 500.0
            !request-timeout-hint ok 1
        """
        if len(msg.arguments) > 1:
            raise FailReply("Too many parameters given.")
        hints: Dict[str, float] = {}
        if msg.arguments:
            name = to_str(msg.arguments[0], "replace")
            handler = self._request_handlers.get(name)
            if handler is None:
                raise FailReply("Unknown request method")
            hints[name] = getattr(handler, "request_timeout_hint", None) or 0
        else:
            for name, handler in self._request_handlers.items():
                hint = getattr(handler, "request_timeout_hint", None)
                if hint:
                    hints[name] = hint
        for name, hint in sorted(hints.items()):
            req.inform(name, float(hint))
        return req.make_reply("ok", len(hints))

    def request_log_level(self, req: Any, msg: Message) -> Message:
        """Query or set the current logging level.

        Parameters
        ----------
        level : {'all', 'trace', 'debug', 'info', 'warn', 'error', 'fatal', 'off'}, optional
            The level to set (default: leave it unchanged).

        Returns
        -------
        success : {'ok', 'fail'}
            Whether the request succeeded.
        level : {'all', 'trace', 'debug', 'info', 'warn', 'error', 'fatal', 'off'}
            The level after the request.

        Examples
        --------
        ::

            ?log-level
            !log-level ok warn
            ?log-level info
            !log-level ok info
        """
        if msg.arguments:
            try:
                self.log.set_log_level_by_name(msg.arguments[0])
            except ValueError as exc:
                raise FailReply(str(exc))
        return req.make_reply("ok", self.log.level_name())

    def request_restart(self, req: Any, msg: Message) -> None:
        """Restart the device server.

        Returns
        -------
        success : {'ok', 'fail'}
            Whether scheduling the restart succeeded.

        Examples
        --------
        ::

            ?restart
            !restart ok
        """
        if self._restart_queue is None:
            raise FailReply("No restart queue registered -- cannot restart.")
        self._restart_queue.put_nowait(self)
        req.reply("ok")

    def request_client_list(self, req: Any, msg: Message) -> Message:
        """Request the list of connected clients.

        Informs
        -------
        addr : str
            The address of a client as ``host:port``.

        Returns
        -------
        success : {'ok', 'fail'}
            Whether sending the client list succeeded.
        informs : int
            Number of ``#client-list`` informs sent.

        Examples
        --------
        ::

            ?client-list
            #client-list 127.0.0.1:53600
            !client-list ok 1
        """
        with self._state_lock:
            clients = list(self._client_conns)
        for conn in clients:
            req.inform(conn.address)
        return req.make_reply("ok", str(len(clients)))

    @minimum_katcp_version(5, 0)
    def request_version_list(self, req: Any, msg: Message) -> Message:
        """Request the list of versions of roles and subcomponents.

        Informs
        -------
        name : str
            Name of the role or component.
        version : str
            Its version.
        build_state_or_serial_number : str
            The instance's build state or serial number (may be absent).

        Returns
        -------
        success : {'ok', 'fail'}
            Whether sending the version list succeeded.
        informs : int
            Number of ``#version-list`` informs sent.

        Examples
        --------
        ::

            ?version-list
            #version-list katcp-protocol 5.0-IM
            #version-list katcp-library katcp-python-0.9.3 0.9.3
            #version-list katcp-device foodevice-1.0 foodevice-1.0.0rc1
            !version-list ok 3
        """
        versions = [
            ("katcp-protocol", (str(self.PROTOCOL_INFO), None)),
            ("katcp-library", ("katcp-python-%s" % LIBRARY_VERSION, LIBRARY_VERSION)),
            ("katcp-device", (self.version(), self.build_state())),
        ] + sorted(self.extra_versions.items())
        for name, (version, build_state) in versions:
            if build_state is None:
                req.inform(name, version)
            else:
                req.inform(name, version, build_state)
        return req.make_reply("ok", str(len(versions)))

    def request_watchdog(self, req: Any, msg: Message) -> Message:
        """Check that the server is still alive.

        Returns
        -------
        success : {'ok'}

        Examples
        --------
        ::

            ?watchdog
            !watchdog ok
        """
        return req.make_reply("ok")
