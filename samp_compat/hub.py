"""The SAMP hub: Standard Profile on XML-RPC, optional Web Profile."""
import logging
import secrets
import socket
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional

from protocompat.netutil import SelectorLoop

from . import lockfile_helpers
from ._conf import conf
from ._hub_delivery import Deliverer, Recipient
from ._hub_messaging import MessageRouter
from ._hub_registry import HUB_PUBLIC_ID, Client, Registry
from ._mtypes import mtype_subtypes
from .constants import SAMP_STATUS_OK, __profile_version__  # noqa: F401 - upstream name
from .errors import SAMPHubError, SAMPProxyError, SAMPProxyTimeoutError, SAMPWarning  # noqa: F401
from .lockfile_helpers import create_lock_file, read_lockfile  # noqa: F401 - upstream names
from .standard_profile import SAMPSimpleXMLRPCRequestHandler, ThreadingXMLRPCServer
from .utils import SAMPXXEServerProxy, ServerProxyPool, internet_on  # noqa: F401 - upstream
from .web_profile import (  # noqa: F401 - upstream names
    WebHubAccess, WebProfileDialog, WebProfileRequestHandler, WebProfileXMLRPCServer,
    web_profile_text_dialog)

__all__ = ["SAMPHubServer", "WebProfileDialog"]

log = logging.getLogger("samp_compat.hub")

#: Seconds the hub waits for the ``samp.hub.event.shutdown`` deliveries when stopping.
SHUTDOWN_GRACE = 2.0
#: Seconds each server or pool gets to stop.
STOP_TIMEOUT = 5.0
_HOUSEKEEPING_INTERVAL = 1.0
#: Standard Profile requests with a body up to this many bytes are served on the
#: loop thread (no hub method blocks); larger ones on worker threads.
INLINE_BODY = 64 * 1024
_HUB_NAME = "samp_compat SAMP Hub"
_STANDARD_METHODS_WITH_HOST = ("samp.hub.notify", "samp.hub.notifyAll", "samp.hub.call",
                               "samp.hub.callAll", "samp.hub.callAndWait")


class SAMPHubServer:
    """SAMP Hub Server.

    Parameters
    ----------
    secret : str, optional
        The secret code to use for the SAMP lockfile. If none is specified,
        a random one is generated.
    addr : str, optional
        Listening address (or IP). Defaults to 127.0.0.1 (the host name only
        when ``conf.use_internet`` is True and the internet answers).
    port : int, optional
        Listening XML-RPC server socket port. 0 (the default) picks a free port.
    lockfile : str, optional
        Custom lockfile name.
    timeout : int, optional
        Hub inactivity timeout in seconds; 0 (the default) never times out.
    client_timeout : int, optional
        Client inactivity timeout in seconds; 0 (the default) never times out.
        An idle client gets ``samp.hub.disconnect`` and is unregistered.
    mode : {"single", "multiple"}, optional
        Lockfile in ``~/.samp`` or in ``~/.samp-1/``.
    label : str, optional
        A string used to label the hub with a human-readable name.
    web_profile : bool, optional
        Enable the Web Profile (default True).
    web_profile_dialog : WebProfileDialog, optional
        The consent dialog for Web Profile registrations; default a console prompt.
    web_port : int, optional
        Web Profile port (default 21012); 0 picks a free port (see ``_web_port``).
    pool_size : int, optional
        Most worker threads serving the requests of each profile's endpoint
        (Web Profile requests, and Standard Profile requests over 64 KiB).

    Notes
    -----
    One loop thread serves the Standard and the Web Profile endpoints, with
    no cap on connections, and itself runs the Standard Profile requests
    (no hub method blocks); Web Profile requests run on workers started on
    demand. Callbacks to ``http://`` clients are made on the loop too, at
    most four at a time per client, so a client that does not answer delays
    no other and holds no thread. A subclass may rely on ``_web_port`` (the Web Profile's
    port once started), ``_lockfile`` (the lockfile written, or None),
    ``_is_running`` and ``_url`` (the Standard Profile's URL), as in astropy.
    """

    def __init__(self, secret: Optional[str] = None, addr: Optional[str] = None, port: int = 0,
                 lockfile: Optional[str] = None, timeout: float = 0, client_timeout: float = 0,
                 mode: str = "single", label: str = "", web_profile: bool = True,
                 web_profile_dialog: Optional[WebProfileDialog] = None, web_port: int = 21012,
                 pool_size: int = 20) -> None:
        if mode not in ("single", "multiple"):
            raise ValueError("mode must be 'single' or 'multiple'")
        self._id = str(uuid.uuid1())
        self._secret = secret if secret is not None else secrets.token_hex(16)
        self._addr = addr
        self._port = port
        self._customlockfilename = lockfile
        self._lockfile: Optional[str] = None
        self._timeout = timeout
        self._client_timeout = client_timeout
        self._mode = mode
        self._label = label
        self._web_profile = web_profile
        self._web_profile_dialog = web_profile_dialog
        self._web_port = web_port
        self._pool_size = pool_size
        self._url = ""
        self._loop: Optional[SelectorLoop] = None
        self._server: Optional[ThreadingXMLRPCServer] = None
        self._web: Optional[WebProfileRequestHandler] = None
        self._registry = Registry()
        self._hub_client: Optional[Client] = None
        self._is_running = False
        self._state_lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._last_activity = time.monotonic()
        self._housekeeping: Any = None
        self._router = self._new_router()

    # -- properties -------------------------------------------------------------
    @property
    def id(self) -> str:
        """The unique hub ID."""
        return self._id

    @property
    def is_running(self) -> bool:
        """Whether the hub has been started and not stopped since.

        Returns
        -------
        running : bool
            True between ``start()`` and ``stop()``.
        """
        return self._is_running

    @property
    def params(self) -> Dict[str, str]:
        """The hub parameters (which are written to the lockfile)."""
        return {
            "samp.secret": self._secret,
            "samp.hub.xmlrpc.url": self._url,
            "samp.profile.version": __profile_version__,
            "hub.id": self.id,
            "hub.label": self._label or "Hub %s" % self.id,
        }

    @staticmethod
    def get_mtype_subtypes(mtype: str) -> List[str]:
        """Return the MType itself and every wildcard pattern that matches it.

        Parameters
        ----------
        mtype : str
            A dot-separated MType such as ``samp.app.ping``.

        Returns
        -------
        types : list
            Most specific first, e.g. ``['samp.app.ping', 'samp.app.*', 'samp.*', '*']``.
        """
        return mtype_subtypes(mtype)

    # -- life cycle ----------------------------------------------------------------
    def _new_router(self) -> MessageRouter:
        self._deliverer = Deliverer(self._drop_dead_client, self._delivery_failed,
                                    self._stopping, lambda: conf.n_retries)
        return MessageRouter(self._registry, self._deliverer, self._call_later,
                             lambda: self._hub_client)

    def _host(self) -> str:
        if self._addr:
            return self._addr
        if conf.use_internet:
            try:
                if internet_on():
                    return socket.getfqdn()
            except OSError:
                pass
        return "127.0.0.1"

    def start(self, wait: bool = False) -> None:
        """Start the hub and write its lockfile.

        When another running hub owns the lockfile (or ``$SAMP_HUB`` names
        a lockfile that is not a local file), :func:`create_lock_file` warns
        with a :class:`SAMPWarning` and writes nothing; this hub starts all
        the same, as astropy's does, without a lockfile: clients that look
        for a hub find the other one, and reach this one only when given its
        ``params`` (``SAMPHubProxy.connect(hub=...)`` or ``hub_params=...``).

        Parameters
        ----------
        wait : bool
            If True, block until the hub stops (Ctrl-C stops it).

        Raises
        ------
        SAMPHubError
            The hub is already running.
        """
        with self._state_lock:
            if self._is_running:
                raise SAMPHubError("Hub is already running")
            if self._lockfile is not None:
                raise SAMPHubError("Hub is not running but lockfile is set")
            self._stopping.clear()
            self._stopped.clear()
            self._registry = Registry()
            self._router = self._new_router()
            self._start_servers()
            params = self.params
            try:
                lockfilename = lockfile_helpers.create_lock_file(
                    lockfilename=self._customlockfilename, mode=self._mode, hub_id=self.id,
                    hub_params=params)
            except OSError:
                self._stop_servers()
                raise
            # False: another live hub owns the lockfile (create_lock_file has
            # warned). The hub runs without a lockfile of its own, so stop()
            # removes nothing.
            self._lockfile = lockfilename if isinstance(lockfilename, str) and lockfilename \
                else None
            self._is_running = True
            self._last_activity = time.monotonic()
            self._setup_hub_as_client()
            self._housekeeping = self._call_later(_HOUSEKEEPING_INTERVAL, self._housekeep)
        if self._lockfile:
            log.info("Hub started")
        else:
            log.info("Hub started without a lockfile at %s: only clients given its "
                     "parameters can reach it", self._url)
        if wait:
            try:
                while not self._stopped.wait(0.5):
                    pass
            except KeyboardInterrupt:
                self.stop()

    def _start_servers(self) -> None:
        host = self._host()
        loop = SelectorLoop(name="SAMPHubServer")
        try:
            server = ThreadingXMLRPCServer((host, self._port or 0), pool_size=self._pool_size,
                                           name="SAMPHubServer", loop=loop,
                                           inline_body=INLINE_BODY)
        except OSError:
            loop.stop(0)
            raise
        self._loop = loop
        self._deliverer.loop = loop
        SAMPSimpleXMLRPCRequestHandler(self._standard_methods(), self._note_activity
                                       ).install(server)
        self._server = server
        self._url = "http://%s:%d" % (host if ":" not in host else "[%s]" % host,
                                      server.server_address[1])
        if self._web_profile:
            try:
                self._web = WebProfileRequestHandler(
                    self._web_port, self._web_profile_dialog, self._pool_size, WebHubAccess(
                        methods=self._standard_methods(),
                        register_web_client=lambda: self._perform_register(web=True),
                        client_by_key=lambda key: self._registry.by_key(key),
                        client_by_id=lambda public_id: self._registry.get_by_id(public_id),
                        note_activity=self._note_activity,
                        stopping=self._stopping.is_set), loop=loop)
                self._web_port = self._web.port
            except OSError:
                log.warning("Port %s already in use. Impossible to run the Hub with Web "
                            "Profile support.", self._web_port)
                self._web = None
        server.start()
        if self._web is not None:
            self._web.start()
        loop.start()

    def _stop_servers(self) -> None:
        for stoppable in (self._web, self._server):
            if stoppable is not None:
                stoppable.stop(STOP_TIMEOUT)
        if self._loop is not None:
            self._loop.stop(STOP_TIMEOUT)
        for client in self._registry.clients():
            self._deliverer.forget(client.recipient)
        self._deliverer.shutdown(STOP_TIMEOUT)
        self._web = None
        self._server = None
        self._loop = None

    def _setup_hub_as_client(self) -> None:
        hub = self._registry.add()
        hub.recipient.local = self._router.hub_receive
        self._hub_client = hub
        hub.metadata = {
            "samp.name": _HUB_NAME,
            "samp.description.text": self._label,
            "author.name": "The protocompat developers",
            "samp.documentation.url": "https://protocompat.readthedocs.io/en/latest/samp.html",
            "samp.icon.url": self._url + "/samp/icon",
        }
        hub.subscribe({"samp.app.ping": {}, "x-samp.query.by-meta": {},
                       "samp.query.by-meta": {}})

    def stop(self) -> None:
        """Stop the hub, tell the clients, and remove the lockfile it wrote."""
        with self._state_lock:
            if not self._is_running:
                return
            self._announce_shutdown()
            self._stopping.set()
            self._is_running = False
            if self._housekeeping is not None:
                self._housekeeping.cancel()
            self._router.fail_all_pending("Hub is shutting down")
            if self._lockfile:
                lockfile_helpers.remove_lock_file(self._lockfile, self._secret)
            self._lockfile = None
            self._stop_servers()
            self._hub_client = None
            self._stopped.set()
        log.info("Hub stopped")

    def _announce_shutdown(self) -> None:
        """Send ``samp.hub.event.shutdown`` and wait (boundedly) until it is delivered."""
        cond = threading.Condition()
        delivered = [0]

        def one_done() -> None:
            with cond:
                delivered[0] += 1
                cond.notify_all()
        queued = self._router.hub_event("samp.hub.event.shutdown", {}, done=one_done)
        with cond:
            cond.wait_for(lambda: delivered[0] >= queued, SHUTDOWN_GRACE)

    def _call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any:
        loop = self._loop
        if loop is None:
            return None
        return loop.call_later(delay, callback, *args)

    def _housekeep(self) -> None:
        """Runs on the hub's loop every second: inactivity timeouts."""
        if not self._is_running:
            return
        now = time.monotonic()
        if self._timeout and now - self._last_activity > self._timeout:
            log.info("Hub inactivity timeout expired")
            threading.Thread(target=self.stop, name="SAMPHubServer-timeout", daemon=True).start()
            return
        if self._client_timeout:
            for client in self._registry.clients():
                if client is not self._hub_client and \
                        now - client.last_activity > self._client_timeout:
                    self._disconnect(client, "Timeout expired!")
        self._housekeeping = self._call_later(_HOUSEKEEPING_INTERVAL, self._housekeep)

    def _disconnect(self, client: Client, reason: str) -> None:
        """Send ``samp.hub.disconnect`` to ``client`` (if subscribed), then unregister it."""
        hub = self._hub_client
        if hub is not None and client.subscription_for("samp.hub.disconnect") is not None:
            message = {"samp.mtype": "samp.hub.disconnect", "samp.params": {"reason": reason}}
            client.last_activity = float("inf")  # not timed out twice meanwhile
            if self._router.send(client, "receiveNotification", (hub.public_id, message),
                                 lambda: self._remove_client(client)):
                return
        self._remove_client(client)

    def _drop_dead_client(self, recipient: Recipient) -> None:
        client = self._registry.get_by_id(recipient.public_id)
        if client is not None and client.recipient is recipient:
            self._remove_client(client)

    def _delivery_failed(self, recipient: Recipient, method: str, args: tuple,
                         reason: str) -> None:
        self._router.delivery_failed(recipient, method, args, reason)

    def _note_activity(self) -> None:
        self._last_activity = time.monotonic()

    # -- request dispatch ------------------------------------------------------------
    def _standard_methods(self) -> Dict[str, Callable[..., Any]]:
        return {
            "samp.hub.ping": self._ping,
            "samp.hub.register": self._register,
            "samp.hub.unregister": self._unregister,
            "samp.hub.setXmlrpcCallback": self._set_xmlrpc_callback,
            "samp.hub.declareMetadata": self._declare_metadata,
            "samp.hub.getMetadata": self._get_metadata,
            "samp.hub.declareSubscriptions": self._declare_subscriptions,
            "samp.hub.getSubscriptions": self._get_subscriptions,
            "samp.hub.getRegisteredClients": self._get_registered_clients,
            "samp.hub.getSubscribedClients": self._get_subscribed_clients,
            "samp.hub.notify": self._router_call("notify"),
            "samp.hub.notifyAll": self._router_call("notify_all"),
            "samp.hub.call": self._router_call("call"),
            "samp.hub.callAll": self._router_call("call_all"),
            "samp.hub.callAndWait": self._router_call("call_and_wait"),
            "samp.hub.reply": self._router_call("reply"),
        }

    def _router_call(self, name: str) -> Callable[..., Any]:
        # The router is replaced at each start(): look it up at call time.
        return lambda *params: getattr(self._router, name)(*params)

    # -- SAMP operations -----------------------------------------------------------------
    def _ping(self, *private_key: Any) -> str:
        return "1"

    def _register(self, secret: Any) -> Dict[str, str]:
        if not isinstance(secret, str) or not secrets.compare_digest(
                secret.encode("utf-8", "replace"), self._secret.encode("utf-8", "replace")):
            raise SAMPProxyError(7, "Bad secret code")
        return self._perform_register()

    def _perform_register(self, web: bool = False) -> Dict[str, str]:
        client = self._registry.add(web)
        self._router.hub_event("samp.hub.event.register", {"id": client.public_id})
        return {"samp.self-id": client.public_id, "samp.private-key": client.private_key,
                "samp.hub-id": self._hub_client.public_id if self._hub_client else HUB_PUBLIC_ID}

    def _unregister(self, private_key: Any) -> str:
        try:
            client = self._registry.by_key(private_key)
        except SAMPProxyError:
            return ""  # already gone: unregistering twice is not an error (as astropy)
        if client is not self._hub_client:
            self._remove_client(client)
        return ""

    def _remove_client(self, client: Client) -> None:
        if not self._registry.remove(client):
            return
        self._deliverer.forget(client.recipient)
        self._router.forget_calls_of(client)
        if self._web is not None:
            self._web.forget(client)
        self._router.hub_event("samp.hub.event.unregister", {"id": client.public_id},
                               exclude=client)
        log.debug("unregistered %s", client.public_id)

    def _set_xmlrpc_callback(self, private_key: Any, xmlrpc_addr: Any) -> str:
        client = self._registry.by_key(private_key)
        if not isinstance(xmlrpc_addr, str) or not xmlrpc_addr.startswith(("http://", "https://")):
            raise SAMPProxyError(1, "callback address must be an http(s) URL")
        if client is not self._hub_client and not client.web:
            client.recipient.set_url(xmlrpc_addr)
        return ""

    def _declare_metadata(self, private_key: Any, metadata: Any) -> str:
        client = self._registry.by_key(private_key)
        if not isinstance(metadata, dict):
            raise SAMPProxyError(1, "metadata must be a map")
        client.metadata = metadata
        self._router.hub_event("samp.hub.event.metadata",
                               {"id": client.public_id, "metadata": client.metadata})
        return ""

    def _get_metadata(self, private_key: Any, client_id: Any) -> Dict[str, Any]:
        self._registry.by_key(private_key)
        return self._registry.by_id(client_id).metadata

    def _declare_subscriptions(self, private_key: Any, subscriptions: Any) -> str:
        client = self._registry.by_key(private_key)
        if not isinstance(subscriptions, dict):
            raise SAMPProxyError(1, "subscriptions must be a map")
        with self._registry.lock:
            client.subscribe(subscriptions)
        self._router.hub_event("samp.hub.event.subscriptions",
                               {"id": client.public_id, "subscriptions": subscriptions})
        return ""

    def _get_subscriptions(self, private_key: Any, client_id: Any) -> Dict[str, Any]:
        self._registry.by_key(private_key)
        return self._registry.by_id(client_id).subscriptions

    def _get_registered_clients(self, private_key: Any) -> List[str]:
        caller = self._registry.by_key(private_key)
        return [c.public_id for c in self._registry.clients() if c is not caller]

    def _get_subscribed_clients(self, private_key: Any, mtype: Any) -> Dict[str, Any]:
        caller = self._registry.by_key(private_key)
        if not isinstance(mtype, str):
            raise SAMPProxyError(3, "samp.mtype keyword is missing")
        result = {}
        for client in self._registry.clients():
            annotation = client.subscription_for(mtype)
            if client is not caller and annotation is not None:
                result[client.public_id] = annotation if isinstance(annotation, dict) else {}
        return result
