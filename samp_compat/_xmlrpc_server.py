"""Threaded XML-RPC server on the shared loop: a Listener, one Stream per connection, workers.

The loop thread accepts connections and decodes requests (one
:class:`~samp_compat._connection.HTTPConnection` each, holding a
:class:`~protocompat.netutil.Stream`); complete requests go to at most
``pool_size`` worker threads, which parse the body once with
:func:`samp_compat.xmlrpc.safe_xmlrpc_loads`, dispatch, and write the response
straight to the socket. Idle HTTP/1.1 keep-alive connections cost no thread.
Several servers may share one loop (a hub's two profiles do).
"""
import logging
import ssl
import threading
import time
import xmlrpc.client
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union

from protocompat.netutil import Listener, SelectorLoop

from . import _http
from ._connection import HTTPConnection
from ._workers import WorkerPool
from .xmlrpc import MAX_XMLRPC_BODY, UnsafeXMLError, safe_xmlrpc_loads, xmlrpc_dumps

__all__ = ["XMLRPCServer", "RequestInfo", "DeferredResult"]

log = logging.getLogger("samp_compat.xmlrpc")

DEFAULT_POOL_SIZE = 8
#: Seconds an idle keep-alive connection, or a half-received request, is kept.
IDLE_TIMEOUT = 120.0
#: Longest pause between two checks for connections idle too long, in seconds.
SWEEP_INTERVAL = 1.0
#: Share of the idle connections closed (least recently used first) when
#: descriptors run out.
SHORTAGE_SHARE = 4

Dispatcher = Callable[[str, tuple, "RequestInfo"], Any]
HTTPHandler = Callable[["RequestInfo"], Tuple[int, Any, Union[bytes, str]]]


class RequestInfo:
    """What a dispatcher or HTTP handler knows about the request it serves.

    Attributes
    ----------
    client_address : tuple
        ``(host, port)`` of the peer.
    headers : dict
        The request headers; lookups ignore case.
    path : str
        The request target, with its query string.
    method : str
        The HTTP method.
    body : bytes
        The request body.
    """

    __slots__ = ("client_address", "headers", "path", "method", "body")

    def __init__(self, client_address: Tuple[str, int], headers: Dict[str, str], path: str,
                 method: str = "POST", body: bytes = b"") -> None:
        self.client_address = client_address
        self.headers = headers
        self.path = path
        self.method = method
        self.body = body

    def __repr__(self) -> str:
        return "RequestInfo(%r, %s %s)" % (self.client_address, self.method, self.path)


class DeferredResult:
    """A result a dispatcher returns before it is known.

    The server sends the XML-RPC response when :meth:`set_result` or
    :meth:`set_exception` is called (from any thread); the worker that
    dispatched the request is free in the meantime.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._value: Any = None
        self._error: Optional[BaseException] = None
        self._callbacks: List[Callable[["DeferredResult"], None]] = []

    def set_result(self, value: Any) -> bool:
        """Complete with ``value``; returns False if already completed."""
        return self._complete(value, None)

    def set_exception(self, exc: BaseException) -> bool:
        """Complete with an exception (a Fault is sent as that fault)."""
        return self._complete(None, exc)

    @property
    def done(self) -> bool:
        """Whether a result or exception was set."""
        return self._done

    def _complete(self, value: Any, exc: Optional[BaseException]) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done, self._value, self._error = True, value, exc
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)
        return True

    def add_done_callback(self, callback: Callable[["DeferredResult"], None]) -> None:
        """Call ``callback(self)`` once completed (at once if already done)."""
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)


def fault_for_exception(exc: BaseException) -> xmlrpc.client.Fault:
    """Return the Fault sent for ``exc``, as :class:`xmlrpc.server.SimpleXMLRPCServer` does."""
    if isinstance(exc, xmlrpc.client.Fault):
        return exc
    return xmlrpc.client.Fault(1, "%s:%s" % (type(exc), exc))


class XMLRPCServer:
    """A threaded XML-RPC server that parses requests safely, once.

    Parameters
    ----------
    addr : tuple, optional
        ``(host, port)`` to listen on; port 0 picks a free port.
    ssl_context : ssl.SSLContext, optional
        Serve HTTPS with this server-side context (handshakes run on the loop).
    max_body : int, optional
        Largest request body accepted (larger gets HTTP 413).
    pool_size : int, optional
        Most worker threads dispatching requests at the same time.
    name : str, optional
        Prefix of the thread names.
    allow_none : bool, optional
        Allow ``None`` (``<nil/>``) in responses.
    idle_timeout : float, optional
        Seconds after which an idle connection, one that sends a request too
        slowly, or one whose peer leaves its response unread, is closed.
    loop : SelectorLoop, optional
        Serve on this loop, which its owner starts and stops; by default the
        server runs a loop of its own.
    inline_body : int, optional
        Requests whose body has at most this many bytes are served on the
        loop thread that decoded them, with no hand-over to a worker: only for
        functions that never block. 0 (the default) serves every request on
        a worker.

    Notes
    -----
    Functions are called on a worker thread (or on the loop thread, see
    ``inline_body``). A :class:`xmlrpc.client.Fault`
    raised by a function is sent as that fault; any other exception becomes
    ``Fault(1, "<class 'X'>:message")``. Malformed or unsafe XML gets a fault
    that never quotes the request; an unknown method gets a fault that does
    not repeat the method name.

    There is no cap on connections below the process's descriptor limit.
    When descriptors run out, a quarter of the idle keep-alive connections
    (the least recently used) are closed so that new peers are accepted;
    their clients reconnect when they next call.
    """

    def __init__(self, addr: Tuple[str, int] = ("127.0.0.1", 0), *, ssl_context: Any = None,
                 max_body: Optional[int] = None, pool_size: int = DEFAULT_POOL_SIZE,
                 name: str = "XMLRPCServer", allow_none: bool = True,
                 idle_timeout: float = IDLE_TIMEOUT, loop: Optional[SelectorLoop] = None,
                 inline_body: int = 0) -> None:
        self.max_body = MAX_XMLRPC_BODY if max_body is None else int(max_body)
        self.allow_none = allow_none
        self.name = name
        self.idle_timeout = float(idle_timeout)
        self._inline_body = int(inline_body)
        self._sweep_interval = max(0.05, min(SWEEP_INTERVAL, self.idle_timeout / 2))
        self._ssl_context = ssl_context
        self._functions: Dict[str, Callable[..., Any]] = {}
        self._instance: Any = None
        self._dispatcher: Optional[Dispatcher] = None
        self._http_handlers: Dict[Tuple[str, str], HTTPHandler] = {}
        self._header_hook: Optional[Callable[[RequestInfo], List[Tuple[str, str]]]] = None
        self._connections: Set[HTTPConnection] = set()  # loop thread only
        self._owns_loop = loop is None
        self._loop = SelectorLoop(name="%s-loop" % name) if loop is None else loop
        self._pool = WorkerPool(pool_size, name)
        self._started = False
        self._stopped = False
        self._sweep_handle: Any = None
        try:
            self._listener = Listener(self._loop, addr[0], addr[1], self._accept,
                                      on_shortage=self._close_idle_for_shortage)
        except OSError:
            if self._owns_loop:
                self._loop.stop(0)
            raise

    # -- configuration -----------------------------------------------------
    @property
    def server_address(self) -> Tuple[str, int]:
        """``(host, port)`` the server listens on."""
        return self._listener.address

    @property
    def url(self) -> str:
        """``http://host:port/`` (or ``https://``) of the server."""
        host, port = self.server_address
        if ":" in host:
            host = "[%s]" % host
        return "%s://%s:%d/" % ("https" if self._ssl_context else "http", host, port)

    def register_function(self, function: Optional[Callable[..., Any]] = None,
                          name: Optional[str] = None) -> Any:
        """Expose ``function`` as XML-RPC method ``name`` (default: its ``__name__``).

        Parameters
        ----------
        function : callable
        name : str, optional

        Returns
        -------
        function : callable
            The function itself, so this works as a decorator.
        """
        if function is None:
            return lambda f: self.register_function(f, name)
        self._functions[name or function.__name__] = function
        return function

    def register_instance(self, obj: Any) -> None:
        """Expose the public methods of ``obj`` (dotted names resolve attribute by attribute)."""
        self._instance = obj

    def register_introspection_functions(self) -> None:
        """Register ``system.listMethods``, ``system.methodHelp`` and ``system.methodSignature``."""
        self._functions["system.listMethods"] = lambda: sorted(self._functions)
        self._functions["system.methodHelp"] = lambda n: (
            getattr(self._functions.get(n), "__doc__", "") or "")
        self._functions["system.methodSignature"] = lambda n: "signatures not supported"

    def set_dispatcher(self, dispatcher: Optional[Dispatcher]) -> None:
        """Route every XML-RPC call to ``dispatcher(method_name, params, request_info)``.

        When set it replaces the registered functions. It may return a
        :class:`DeferredResult` to answer later without holding a worker.
        """
        self._dispatcher = dispatcher

    def add_http_handler(self, method: str, path: str, handler: HTTPHandler) -> None:
        """Serve ``method`` requests on ``path`` with ``handler(request_info)``.

        ``handler`` returns ``(status, headers, body)`` where headers is a list
        of ``(name, value)`` pairs or a dict. A ``path`` ending in ``*`` matches
        every path with that prefix; the query string is not part of the match.
        A POST handler on a path takes precedence over XML-RPC there.
        """
        self._http_handlers[(method.upper(), path)] = handler

    def set_header_hook(self, hook: Optional[Callable[[RequestInfo], List[Tuple[str, str]]]]
                        ) -> None:
        """Add ``hook(request_info)``'s ``(name, value)`` pairs to every XML-RPC response."""
        self._header_hook = hook

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any:
        """Run ``callback(*args)`` on the server's loop thread after ``delay`` seconds.

        The callback must be quick (it runs on the thread that serves sockets).

        Returns
        -------
        handle : object
            An object with a ``cancel()`` method.
        """
        return self._loop.call_later(delay, callback, *args)

    # -- life cycle ----------------------------------------------------------
    def start(self) -> None:
        """Start serving: in background threads, or on the loop given, once its owner starts it."""
        if self._started:
            raise RuntimeError("server already started")
        self._started = True
        self._listener.start()
        self._sweep_handle = self._loop.call_later(self._sweep_interval, self._sweep)
        if self._owns_loop:
            self._loop.start()

    def stop(self, timeout: Optional[float] = 10.0) -> bool:
        """Stop serving, close every socket and end every thread.

        A loop given to the constructor keeps running (its owner stops it);
        the server's sockets are closed on it.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the threads.

        Returns
        -------
        stopped : bool
            True if every thread has ended.
        """
        if self._stopped:
            return True
        self._stopped = True
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = True
        if self._owns_loop:
            self._loop.call_soon(self._close_all)  # runs before the loop ends
            ok = self._loop.stop(timeout)
        elif self._loop.in_loop_thread() or not self._loop.is_running():
            self._loop.call_soon(self._close_all)  # now, or when the loop ends
        else:
            closed = threading.Event()

            def close_all() -> None:
                self._close_all()
                closed.set()
            self._loop.call_soon(close_all)
            ok = closed.wait(timeout)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self._pool.shutdown(left) and ok

    def _close_all(self) -> None:
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
        self._listener.close()
        for conn in list(self._connections):
            conn.close()

    def __enter__(self) -> "XMLRPCServer":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- loop thread -----------------------------------------------------------
    def _accept(self, sock: Any, address: Any) -> None:
        if self._stopped:
            sock.close()
            return
        if self._ssl_context is not None:
            try:
                sock = self._ssl_context.wrap_socket(sock, server_side=True,
                                                     do_handshake_on_connect=False)
            except (OSError, ValueError, ssl.SSLError) as exc:
                log.info("%s: TLS set-up for %s failed: %s", self.name, address, exc)
                sock.close()
                return
        conn = HTTPConnection(self._loop, sock, address, self.max_body, self._on_request,
                              self._connections.discard)
        self._connections.add(conn)
        conn.start()

    def _on_request(self, conn: HTTPConnection, request: _http.Request) -> None:
        if len(request.body) <= self._inline_body:
            self._handle(conn, request)
        else:
            self._pool.submit(self._handle, conn, request)

    def _idle_connections(self) -> List[HTTPConnection]:
        """Connections waiting for their next request, least recently used first."""
        idle = [c for c in self._connections if not c.busy and c.partial_since is None]
        idle.sort(key=lambda c: c.idle_since)
        return idle

    def _close_idle_for_shortage(self) -> int:
        idle = self._idle_connections()
        count = (len(idle) + SHORTAGE_SHARE - 1) // SHORTAGE_SHARE
        if count:
            log.warning("%s: out of file descriptors; closing %d of %d idle connections "
                        "(least recently used first)", self.name, count, len(idle))
        for conn in idle[:count]:
            conn.close()
        return count

    def _sweep(self) -> None:
        now = time.monotonic()
        limit = self.idle_timeout
        for conn in list(self._connections):
            if conn.busy:
                continue
            since = conn.partial_since
            if now - (conn.idle_since if since is None else since) > limit:
                conn.close()
        self._sweep_handle = self._loop.call_later(self._sweep_interval, self._sweep)

    # -- worker threads ------------------------------------------------------
    def _handle(self, conn: HTTPConnection, request: _http.Request) -> None:
        info = RequestInfo(conn.address, request.headers, request.path, request.method,
                           request.body)
        keep_alive = request.keep_alive
        handler = self._find_http_handler(request.method, request.path)
        if handler is not None:
            self._handle_http(conn, request, handler, info, keep_alive)
        elif request.method == "POST":
            self._handle_xmlrpc(conn, request, info, keep_alive)
        else:
            status = 404 if request.method in ("GET", "HEAD") else 405
            self._respond(conn, _http.build_response(
                status, [("Content-Type", "text/plain")], b"", keep_alive,
                request.method == "HEAD"), keep_alive)

    def _respond(self, conn: HTTPConnection, data: bytes, keep_alive: bool) -> None:
        """Send the response of the request the calling worker serves; its job ends here."""
        self._pool.release_worker()  # the next request may come as soon as this is sent
        conn.respond(data, keep_alive)

    def _find_http_handler(self, method: str, path: str) -> Optional[HTTPHandler]:
        bare = path.split("?", 1)[0]
        handler = self._http_handlers.get((method, bare))
        if handler is not None:
            return handler
        for (m, p), h in self._http_handlers.items():
            if m == method and p.endswith("*") and bare.startswith(p[:-1]):
                return h
        return None

    def _handle_http(self, conn: HTTPConnection, request: _http.Request, handler: HTTPHandler,
                     info: RequestInfo, keep_alive: bool) -> None:
        try:
            status, headers, body = handler(info)
            if isinstance(headers, dict):
                headers = list(headers.items())
            body = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
        except Exception:
            log.exception("%s: HTTP handler for %s failed", self.name, request.method)
            status, headers, body = 500, [("Content-Type", "text/plain")], b""
        self._respond(conn, _http.build_response(status, list(headers), body, keep_alive,
                                                 request.method == "HEAD"), keep_alive)

    def _handle_xmlrpc(self, conn: HTTPConnection, request: _http.Request, info: RequestInfo,
                       keep_alive: bool) -> None:
        try:
            params, method = safe_xmlrpc_loads(request.body)
            if method is None:
                raise xmlrpc.client.ResponseError("not an XML-RPC request")
        except UnsafeXMLError as exc:
            self._finish(conn, info, keep_alive, error=xmlrpc.client.Fault(
                1, "%s:%s" % (UnsafeXMLError, exc)))
            return
        except Exception:
            self._finish(conn, info, keep_alive, error=xmlrpc.client.Fault(
                1, "%s:malformed XML-RPC request" % xmlrpc.client.ResponseError))
            return
        try:
            result = self._dispatch(method, params, info)
        except Exception as exc:
            self._finish(conn, info, keep_alive, error=exc)
            return
        if isinstance(result, DeferredResult):
            result.add_done_callback(  # on the thread that completes it
                lambda d: self._finish(conn, info, keep_alive, d._value, d._error, later=True))
        else:
            self._finish(conn, info, keep_alive, result)

    def _dispatch(self, method: str, params: tuple, info: RequestInfo) -> Any:
        if self._dispatcher is not None:
            return self._dispatcher(method, params, info)
        func = self._functions.get(method)
        if func is None and self._instance is not None:
            func = self._resolve_instance(method)
        if func is None:
            raise Exception("method is not supported")
        return func(*params)

    def _resolve_instance(self, method: str) -> Optional[Callable[..., Any]]:
        dispatch = getattr(self._instance, "_dispatch", None)
        if dispatch is not None:
            return lambda *params: dispatch(method, params)
        obj = self._instance
        for part in method.split("."):
            if part.startswith("_"):
                return None
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj if callable(obj) else None

    def _finish(self, conn: HTTPConnection, info: RequestInfo, keep_alive: bool,
                value: Any = None, error: Optional[BaseException] = None,
                later: bool = False) -> None:
        if error is not None:
            fault = fault_for_exception(error)
            if not isinstance(error, xmlrpc.client.Fault):
                log.debug("%s: dispatch raised %r", self.name, error)
            body = xmlrpc_dumps(fault, methodresponse=True, allow_none=self.allow_none)
        else:
            try:
                body = xmlrpc_dumps((value,), methodresponse=True, allow_none=self.allow_none)
            except Exception as exc:
                body = xmlrpc_dumps(fault_for_exception(exc), methodresponse=True,
                                    allow_none=self.allow_none)
        headers = [("Content-Type", "text/xml")]
        if self._header_hook is not None:
            try:
                headers.extend(self._header_hook(info))
            except Exception:
                log.exception("%s: header hook failed", self.name)
        data = body.encode("utf-8", "xmlcharrefreplace")
        response = _http.build_response(200, headers, data, keep_alive)
        if later:  # not the request that this thread, if a worker, is serving
            conn.respond(response, keep_alive)
        else:
            self._respond(conn, response, keep_alive)
