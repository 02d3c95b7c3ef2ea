"""SAMP Web Profile: the ``samp.webhub.*`` endpoint, CORS, cross-domain files, consent.

The URL translator serves a web client only URLs that appeared in callbacks
delivered to that client (as JSAMP's hub does); other URLs get HTTP 403.
"""
import collections
import logging
import mimetypes
import os
import queue
import select
import sys
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Callable, Deque, Dict, List, NamedTuple, Optional, Tuple

from protocompat.netutil import SelectorLoop

from ._conf import conf
from ._url_tracker import UrlTracker
from .errors import SAMPProxyError
from .standard_profile import (  # noqa: F401 - SAMPSimpleXMLRPCRequestHandler: upstream name
    DeferredResult, RequestInfo, SAMPSimpleXMLRPCRequestHandler, ThreadingXMLRPCServer,
    XMLRPCServer)

__all__ = ["WebProfileDialog", "WebProfileXMLRPCServer", "WebProfileRequestHandler",
           "web_profile_text_dialog", "CROSS_DOMAIN", "CLIENT_ACCESS_POLICY"]

log = logging.getLogger("samp_compat.web_profile")

#: Adobe cross-domain policy served at ``/crossdomain.xml``.
CROSS_DOMAIN = """<?xml version='1.0'?>
<!DOCTYPE cross-domain-policy SYSTEM "http://www.adobe.com/xml/dtds/cross-domain-policy.dtd">
<cross-domain-policy>
  <site-control permitted-cross-domain-policies="all"/>
  <allow-access-from domain="*"/>
  <allow-http-request-headers-from domain="*" headers="*"/>
</cross-domain-policy>
"""
#: Silverlight client access policy served at ``/clientaccesspolicy.xml``.
CLIENT_ACCESS_POLICY = """<?xml version='1.0'?>
<access-policy>
  <cross-domain-access>
    <policy>
      <allow-from>
        <domain uri="*"/>
      </allow-from>
      <grant-to>
        <resource path="/" include-subpaths="true"/>
      </grant-to>
    </policy>
  </cross-domain-access>
</access-policy>
"""
#: Seconds a registration waits for the user's consent before it is refused.
CONSENT_TIMEOUT = 300.0
#: Longest ``pullCallbacks`` wait, in seconds.
MAX_PULL_WAIT = 600.0
#: Most callbacks queued for one web client; the oldest are dropped.
MAX_QUEUED_CALLBACKS = 10000
#: Largest resource the URL translator serves, in bytes.
MAX_TRANSLATED_BYTES = 64 * 1024 * 1024
#: Longest stretch a pending consent request goes without noticing that the hub stops.
_STOP_CHECK_INTERVAL = 0.1
#: Longest console answer read, in bytes.
_MAX_ANSWER_BYTES = 1024
_FETCH_TIMEOUT = 10.0
_LOCAL_ADDRESSES = ("127.0.0.1", "::1", "localhost", "::ffff:127.0.0.1")
_REFUSED_BY_HUB = "Request of registration rejected by the Hub."
_REFUSED_BY_USER = "Request of registration rejected by the user."
_TRANSLATOR_PATH = "/translator/"
_HTTP_FORBIDDEN = 403
_HTTP_NOT_FOUND = 404


class WebProfileDialog:
    """A base class to make writing Web Profile GUI consent dialogs easier.

    The hub sets ``queue_request`` and ``queue_result``. A subclass must
    poll :meth:`handle_queue` from its GUI loop and define
    ``show_dialog(samp_name, details, client, origin)``, which eventually
    calls :meth:`consent` or :meth:`reject`.
    """

    def handle_queue(self) -> None:
        """Show the dialog for a pending registration request, if any."""
        try:
            request = self.queue_request.get_nowait()  # type: ignore[attr-defined]
        except (queue.Empty, AttributeError):
            return
        identity, client, origin = request
        samp_name = identity if isinstance(identity, str) else identity.get("samp.name")
        self.show_dialog(samp_name, identity, client, origin)  # type: ignore[attr-defined]

    def consent(self) -> None:
        """Accept the request being shown."""
        self.queue_result.put(True)  # type: ignore[attr-defined]

    def reject(self) -> None:
        """Refuse the request being shown."""
        self.queue_result.put(False)  # type: ignore[attr-defined]


def web_profile_text_dialog(request: Tuple[Any, Any, str], queue: "queue.Queue[bool]"
                            ) -> None:
    """Ask for consent on the console; put True or False on ``queue``.

    Parameters
    ----------
    request : tuple
        ``(identity_info, client_address, origin)``.
    queue : queue.Queue
        Receives the answer.
    """
    _print_consent_request(request)
    queue.put(_is_yes(_input_line()))


def _print_consent_request(request: Tuple[Any, Any, str]) -> None:
    identity, _client, origin = request
    samp_name = identity if isinstance(identity, str) else identity.get("samp.name", "unknown")
    print("A Web application which declares to be\n\nName: %s\nOrigin: %s\n\n"
          "is requesting to be registered with the SAMP Hub.\nPay attention that if you "
          "permit its registration, such\napplication will acquire all current user "
          "privileges, like\nfile read/write.\n\nDo you give your consent? [yes|no]"
          % (samp_name, origin), flush=True)


def _is_yes(answer: str) -> bool:
    return answer.strip().lower() in ("yes", "y")


def _input_line() -> str:
    """``input()``; an empty answer when there is no terminal."""
    try:
        return input(">>> ")
    except (EOFError, OSError, RuntimeError):
        return ""


def _selectable_stdin() -> Optional[int]:
    """The file descriptor of stdin if ``select()`` can wait on it, else None."""
    if os.name != "posix" or sys.stdin is None:
        return None
    try:
        fd = sys.stdin.fileno()
        select.select([fd], [], [], 0)
    except (AttributeError, ValueError, OSError):
        return None
    return fd


def _read_answer(fd: int, stopped: Callable[[], bool], timeout: float) -> Optional[str]:
    """Read one line from ``fd`` unless ``stopped()`` turns true or ``timeout`` expires.

    Returns None when interrupted, timed out, or at end of input.
    """
    deadline = time.monotonic() + timeout
    line = bytearray()
    while not stopped():
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            ready, _, _ = select.select([fd], [], [], min(_STOP_CHECK_INTERVAL, left))
            if not ready:
                continue
            byte = os.read(fd, 1)  # one byte: input after the line stays unread
        except OSError:
            return None
        if not byte:
            return None
        if byte == b"\n":
            return line.decode("utf-8", "replace")
        if len(line) >= _MAX_ANSWER_BYTES:
            return None
        line += byte
    return None


def _console_consent(request: Tuple[Any, Any, str], stopped: Callable[[], bool]) -> bool:
    """Ask on the console; an answer pending when ``stopped()`` turns true is a refusal."""
    if stopped():
        return False
    _print_consent_request(request)
    fd = _selectable_stdin()
    if fd is None:  # Windows console, or stdin replaced: plain input()
        return _is_yes(_input_line())
    print(">>> ", end="", flush=True)
    answer = _read_answer(fd, stopped, CONSENT_TIMEOUT)
    return answer is not None and _is_yes(answer)


class WebProfileXMLRPCServer(XMLRPCServer):
    """The Web Profile XML-RPC server; ``clients`` holds the web clients' private keys."""

    def __init__(self, addr: Tuple[str, int], **kwargs: Any) -> None:
        super().__init__(addr, **kwargs)
        self.clients: List[str] = []

    def add_client(self, client_id: str) -> None:
        """Allow ``client_id`` to use the URL translator."""
        self.clients.append(client_id)

    def remove_client(self, client_id: str) -> None:
        """Forget ``client_id`` (unknown ids are ignored)."""
        if client_id in self.clients:
            self.clients.remove(client_id)


class _Callbacks:
    """Queued reverse callbacks of one web client and its pending pulls."""

    def __init__(self) -> None:
        self.items: Deque[Dict[str, Any]] = collections.deque(maxlen=MAX_QUEUED_CALLBACKS)
        self.waiters: List[DeferredResult] = []


def _cors(info: RequestInfo, preflight: bool = False) -> List[Tuple[str, str]]:
    origin = info.headers.get("Origin")
    if origin is None:
        return []
    headers = [("Access-Control-Allow-Origin", origin),
               ("Access-Control-Allow-Headers", "Content-Type"),
               ("Access-Control-Allow-Credentials", "true")]
    if preflight:
        method = info.headers.get("Access-Control-Request-Method")
        if method:
            headers.append(("Access-Control-Allow-Methods", method))
        if info.headers.get("Access-Control-Request-Private-Network") == "true":
            headers.append(("Access-Control-Allow-Private-Network", "true"))
    return headers


class WebHubAccess(NamedTuple):
    """What the Web Profile needs of its hub, as callables."""

    #: ``{"samp.hub.<name>": callable}``: the hub's Standard Profile methods.
    methods: Dict[str, Callable[..., Any]]
    #: ``register_web_client()`` registers a consented web client; returns the
    #: registration map (``samp.self-id``, ``samp.private-key``, ``samp.hub-id``).
    register_web_client: Callable[[], Dict[str, str]]
    #: ``client_by_key(private_key)``: the registered client (SAMP fault 5 if unknown).
    client_by_key: Callable[[Any], Any]
    #: ``client_by_id(public_id)``: the registered client or None.
    client_by_id: Callable[[str], Any]
    #: ``note_activity()`` before each request (the hub's inactivity timeout).
    note_activity: Callable[[], None]
    #: ``stopping()``: whether the hub is stopping.
    stopping: Callable[[], bool]


class WebProfileRequestHandler:
    """Serves the Web Profile endpoint of a hub on its own :class:`WebProfileXMLRPCServer`.

    It answers the ``samp.webhub.*`` calls (registration with consent,
    reverse callbacks, and the Standard Profile methods), CORS preflights,
    ``/crossdomain.xml``, ``/clientaccesspolicy.xml`` and the URL translator.
    Unlike astropy's class of the same name, it is not a ``socketserver``
    request handler: the hub makes one per Web Profile endpoint.

    Parameters
    ----------
    port : int
        Port on localhost (0 picks a free one, then read the ``port`` attribute).
    dialog : WebProfileDialog or None
        The consent dialog; None asks on the console.
    pool_size : int
        Most requests served at once.
    hub : WebHubAccess
        The hub's side.
    loop : SelectorLoop, optional
        The loop to serve on (the hub's); by default the server runs its own.
    """

    _SHARED = ("unregister", "declareMetadata", "getMetadata", "declareSubscriptions",
               "getSubscriptions", "getRegisteredClients", "getSubscribedClients", "notify",
               "notifyAll", "call", "callAll", "callAndWait", "reply")

    def __init__(self, port: int, dialog: Optional[WebProfileDialog], pool_size: int,
                 hub: WebHubAccess, loop: Optional[SelectorLoop] = None) -> None:
        self._hub = hub
        self._urls = UrlTracker()
        self._dialog = dialog
        self._lock = threading.Lock()
        self._consent_lock = threading.Lock()
        self._closing = threading.Event()
        self._callbacks: Dict[str, _Callbacks] = {}
        self.server = WebProfileXMLRPCServer(("127.0.0.1", port), pool_size=pool_size,
                                             name="SAMPWebProfile", loop=loop)
        self.port = self.server.server_address[1]
        self.server.set_dispatcher(self._dispatch)
        self.server.set_header_hook(_cors)
        self.server.add_http_handler("OPTIONS", "/*", lambda info: (
            200, _cors(info, preflight=True), b""))
        for method in ("GET", "POST", "HEAD"):
            self.server.add_http_handler(method, "/crossdomain.xml", lambda info: (
                200, [("Content-Type", "text/x-cross-domain-policy")] + _cors(info),
                CROSS_DOMAIN))
            self.server.add_http_handler(method, "/clientaccesspolicy.xml", lambda info: (
                200, [("Content-Type", "text/xml")] + _cors(info), CLIENT_ACCESS_POLICY))
        self.server.add_http_handler("GET", _TRANSLATOR_PATH + "*", self._translate)
        if dialog is not None:
            dialog.queue_request = queue.Queue(1)  # type: ignore[attr-defined]
            dialog.queue_result = queue.Queue(1)  # type: ignore[attr-defined]

    def start(self) -> None:
        self.server.start()

    def stop(self, timeout: float) -> bool:
        self._closing.set()  # pending consent requests are refused
        with self._lock:
            waiters = [w for cb in self._callbacks.values() for w in cb.waiters]
            self._callbacks.clear()
        for waiter in waiters:
            waiter.set_result([])
        if self._dialog is not None:  # a registration waiting for consent is refused
            try:
                self._dialog.queue_result.put_nowait(False)  # type: ignore[attr-defined]
            except queue.Full:
                pass
        return self.server.stop(timeout)

    # -- dispatch --------------------------------------------------------------
    def _dispatch(self, method: str, params: tuple, info: RequestInfo) -> Any:
        if info.client_address[0] not in _LOCAL_ADDRESSES:
            raise SAMPProxyError(403, _REFUSED_BY_HUB)
        self._hub.note_activity()
        prefix, _, name = method.rpartition(".")
        if prefix != "samp.webhub":
            raise Exception("method is not supported")
        if name == "register":
            return self._register(params, info)
        if name == "ping":
            return self._hub.methods["samp.hub.ping"]()
        if name == "allowReverseCallbacks":
            return self._allow_reverse_callbacks(*params)
        if name == "pullCallbacks":
            return self._pull_callbacks(*params)
        if name in self._SHARED:
            self._urls.note_sent_by_web_client(list(params[1:]))
            return self._hub.methods["samp.hub." + name](*params)
        raise Exception("method is not supported")

    def _register(self, params: tuple, info: RequestInfo) -> Dict[str, str]:
        identity = params[0] if params else None
        if isinstance(identity, dict):
            if not isinstance(identity.get("samp.name"), str):
                raise SAMPProxyError(403, "Request of registration rejected by the Hub "
                                          "(application name not provided).")
        elif not isinstance(identity, str):
            raise SAMPProxyError(403, _REFUSED_BY_HUB)
        origin = info.headers.get("Origin") or "unknown"
        if not self._ask_consent((identity, info.client_address, origin)):
            raise SAMPProxyError(403, _REFUSED_BY_USER)
        result = self._hub.register_web_client()
        client = self._hub.client_by_id(result["samp.self-id"])
        if client is not None:
            client.recipient.web_push = (
                lambda method, args, c=client: self._push(c, method, args))
        self.server.add_client(result["samp.private-key"])
        result["samp.url-translator"] = "http://localhost:%d%s%s?ref=" % (
            self.port, _TRANSLATOR_PATH, result["samp.private-key"])
        return result

    def _stopped(self) -> bool:
        return self._closing.is_set() or self._hub.stopping()

    def _ask_consent(self, request: Tuple[Any, Any, str]) -> bool:
        deadline = time.monotonic() + CONSENT_TIMEOUT
        # One request at a time; a waiting one gives up when the hub stops.
        while not self._consent_lock.acquire(timeout=_STOP_CHECK_INTERVAL):
            if self._stopped() or time.monotonic() > deadline:
                return False
        try:
            if self._stopped():
                return False
            if self._dialog is None:
                return _console_consent(request, self._stopped)
            return self._ask_dialog(request, deadline)
        finally:
            self._consent_lock.release()

    def _ask_dialog(self, request: Tuple[Any, Any, str], deadline: float) -> bool:
        dialog: Any = self._dialog
        while True:  # drop a stale answer
            try:
                dialog.queue_result.get_nowait()
            except queue.Empty:
                break
        dialog.queue_request.put(request)
        try:
            while not self._stopped():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    return bool(dialog.queue_result.get(
                        timeout=min(_STOP_CHECK_INTERVAL, left)))
                except queue.Empty:
                    continue
            return False
        finally:
            try:  # a request never shown is withdrawn
                dialog.queue_request.get_nowait()
            except queue.Empty:
                pass

    # -- reverse callbacks ----------------------------------------------------------
    def _allow_reverse_callbacks(self, private_key: Any, allow: Any) -> str:
        client = self._hub.client_by_key(private_key)
        if str(allow) == "0" or allow is False:
            self.forget(client)
        else:
            with self._lock:
                self._callbacks.setdefault(client.private_key, _Callbacks())
        return ""

    def _pull_callbacks(self, private_key: Any, timeout_secs: Any) -> Any:
        client = self._hub.client_by_key(private_key)
        try:
            timeout = min(float(str(timeout_secs)), MAX_PULL_WAIT)
        except ValueError:
            timeout = 0.0
        with self._lock:
            callbacks = self._callbacks.get(client.private_key)
            if callbacks is None:
                raise SAMPProxyError(1, "Reverse callbacks are not allowed for this client")
            if callbacks.items or timeout <= 0:
                items = list(callbacks.items)
                callbacks.items.clear()
                return items
            waiter = DeferredResult()
            callbacks.waiters.append(waiter)
        self.server.call_later(timeout, self._expire_pull, client.private_key, waiter)
        return waiter

    def _expire_pull(self, private_key: str, waiter: DeferredResult) -> None:
        with self._lock:
            callbacks = self._callbacks.get(private_key)
            if callbacks is not None and waiter in callbacks.waiters:
                callbacks.waiters.remove(waiter)
        waiter.set_result([])

    def _push(self, client: Any, method: str, args: tuple) -> bool:
        with self._lock:
            callbacks = self._callbacks.get(client.private_key)
            if callbacks is None:
                return False
            self._urls.note_delivered(client.private_key, args)
            callbacks.items.append({"samp.methodName": method, "samp.params": list(args)})
            if not callbacks.waiters:
                return True
            waiter = callbacks.waiters.pop(0)
            items = list(callbacks.items)
            callbacks.items.clear()
        waiter.set_result(items)
        return True

    def forget(self, client: Any) -> None:
        """Drop the callback queue of ``client``; its pending pulls get ``[]``."""
        with self._lock:
            callbacks = self._callbacks.pop(client.private_key, None)
        self.server.remove_client(client.private_key)
        self._urls.forget(client.private_key)
        if callbacks is not None:
            for waiter in callbacks.waiters:
                waiter.set_result([])

    # -- URL translator ------------------------------------------------------------------
    def _translate(self, info: RequestInfo) -> Tuple[int, List[Tuple[str, str]], bytes]:
        path, _, query = info.path.partition("?")
        key = urllib.parse.unquote(path[len(_TRANSLATOR_PATH):])
        refs = urllib.parse.parse_qs(query).get("ref")
        if key not in self.server.clients or not refs:
            return _HTTP_NOT_FOUND, _cors(info), b""
        if not self._urls.is_permitted(key, refs[0]):
            log.warning("translator refused a URL that no message to the web client mentioned")
            return _HTTP_FORBIDDEN, [("Content-Type", "text/plain")] + _cors(info), (
                b"URL not mentioned in any message to this client\n")
        try:
            data, ctype = _fetch(refs[0])
        except (OSError, ValueError) as exc:
            log.info("translator could not fetch a resource: %s", type(exc).__name__)
            return _HTTP_NOT_FOUND, _cors(info), b""
        return 200, [("Content-Type", ctype)] + _cors(info), data


def _fetch(url: str) -> Tuple[bytes, str]:
    """Read ``url`` (file: or http(s):, the latter on loopback unless the internet is allowed)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = urllib.request.url2pathname(parsed.path)
        with open(path, "rb") as fobj:
            data = fobj.read(MAX_TRANSLATED_BYTES + 1)
        ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    elif parsed.scheme in ("http", "https"):
        if (parsed.hostname or "") not in _LOCAL_ADDRESSES and not conf.use_internet:
            raise ValueError("remote URL and conf.use_internet is False")
        with urllib.request.urlopen(url, timeout=_FETCH_TIMEOUT) as resp:
            data = resp.read(MAX_TRANSLATED_BYTES + 1)
            ctype = resp.headers.get("Content-Type", "application/octet-stream")
    else:
        raise ValueError("unsupported URL scheme")
    if len(data) > MAX_TRANSLATED_BYTES:
        raise ValueError("resource too large")
    return data, ctype
