"""A SAMP client: registration with a hub and a callable XML-RPC endpoint."""
import copy
import logging
import os
import ssl
import threading
from typing import Any, Callable, Dict, List, Optional

from ._endpoint import callback_server, endpoint_host, server_ssl_context
from ._receive import (is_for_client, run_call_bindings, run_notification_bindings,
                       run_response_binding)
from .constants import SAMP_STATUS_OK, SAMP_STATUS_WARNING
from .errors import SAMPClientError, SAMPWarning  # noqa: F401 - SAMPWarning: upstream name
from .hub import SAMPHubServer  # noqa: F401 - a name of the original module
from .standard_profile import ThreadingXMLRPCServer  # noqa: F401 - upstream name
from .utils import get_num_args, internet_on  # noqa: F401 - upstream name

__all__ = ["SAMPClient"]

log = logging.getLogger("samp_compat.client")


class SAMPClient:
    """A SAMP client able to receive calls and notifications (the callable endpoint).

    Bound functions run on the worker threads of the client's XML-RPC server,
    so a slow binding does not delay the others (up to eight run at once).

    A subclass may rely on the protected members of astropy's class, with
    the same meaning: ``client`` (the callback server, or None), ``hub``,
    ``_thread`` (made in ``__init__`` around ``_serve_forever`` for a
    callable client; :meth:`start` starts it through ``_run_client``, and
    :meth:`stop` joins it, then closes ``client``), ``_is_running``, ``_is_registered``,
    ``_callable``, ``_metadata``, ``_public_id``, ``_private_key``,
    ``_hub_id``, ``_xmlrpcAddr``, ``_notification_bindings``,
    ``_call_bindings``, ``_response_bindings``, ``_ping``,
    ``_client_env_get``, ``_handle_notification``, ``_handle_call``,
    ``_handle_response``, ``_set_xmlrpc_callback`` and
    ``_declare_subscriptions``.

    Parameters
    ----------
    hub : SAMPHubProxy
        Connected proxy used to talk to the hub.
    name : str, optional
        Client name (``samp.name`` metadata).
    description : str, optional
        Client description (``samp.description.text`` metadata).
    metadata : dict, optional
        Client metadata in the standard SAMP form.
    addr : str, optional
        Listening address; 127.0.0.1 unless ``conf.use_internet`` is set and
        the internet is reachable, then the host name.
    port : int, optional
        Listening port; 0 (the default) lets the system choose.
    https : bool, optional
        Serve the callable endpoint over TLS (HTTPS).
    key_file : str, optional
        Private key of the endpoint (may be part of ``cert_file``).
    cert_file : str, optional
        Certificate of the endpoint.
    cert_reqs : int, optional
        ``ssl.CERT_NONE`` (default), ``ssl.CERT_OPTIONAL`` or
        ``ssl.CERT_REQUIRED``: whether the hub must present a certificate.
    ca_certs : str, optional
        CA certificates used to check the hub's certificate.
    ssl_version : int, optional
        ``ssl.PROTOCOL_*`` constant; default ``ssl.PROTOCOL_TLS_SERVER``.
    callable : bool, optional
        Whether the client can receive calls and notifications at all.

    Notes
    -----
    Only ``samp.app.ping`` is answered by default; ``client.env.get`` (which
    would hand out environment variables) is served only if bound explicitly.
    """

    def __init__(self, hub: Any, name: Optional[str] = None, description: Optional[str] = None,
                 metadata: Optional[Dict[str, Any]] = None, addr: Optional[str] = None,
                 port: int = 0, https: bool = False, key_file: Optional[str] = None,
                 cert_file: Optional[str] = None, cert_reqs: int = 0,
                 ca_certs: Optional[str] = None, ssl_version: Optional[int] = None,
                 callable: bool = True) -> None:
        self._is_running = False
        self._is_registered = False
        if metadata is None:
            metadata = {}
        if name is not None:
            metadata["samp.name"] = name
        if description is not None:
            metadata["samp.description.text"] = description
        self._metadata = metadata
        self._addr = addr
        self._port = port
        self._xmlrpcAddr: Optional[str] = None
        self._callable = callable
        self.client: Any = None
        self._public_id: Optional[str] = None
        self._private_key: Optional[str] = None
        self._hub_id: Optional[str] = None
        self._notification_bindings: Dict[str, List[Any]] = {}
        self._call_bindings: Dict[str, List[Any]] = {"samp.app.ping": [self._ping, {}]}
        self._response_bindings: Dict[str, Callable[..., Any]] = {}
        self._host_name = endpoint_host(addr, port)
        self.hub = hub
        if self._callable:
            context = (server_ssl_context(key_file, cert_file, cert_reqs, ca_certs, ssl_version)
                       if https else None)
            self._make_server(context)
            self._thread = threading.Thread(target=self._serve_forever, name="SAMPClient",
                                            daemon=True)

    def _make_server(self, context: Optional[ssl.SSLContext]) -> None:
        # The methods are looked up at call time, so a subclass's receive_* is served.
        self.client, self._xmlrpcAddr = callback_server(
            self._addr or self._host_name, self._port, context, {
                "samp.client.receiveNotification":
                    lambda *args: self.receive_notification(*args),
                "samp.client.receiveCall": lambda *args: self.receive_call(*args),
                "samp.client.receiveResponse": lambda *args: self.receive_response(*args),
            })
        if self._port == 0:
            self._port = self.client.server_address[1]

    # -- life cycle ------------------------------------------------------------
    def start(self) -> None:
        """Start serving the callable endpoint in a separate thread (non-blocking).

        A non-callable client has no endpoint; it is simply marked running.

        Raises
        ------
        SAMPClientError
            The client is running, or was stopped once (make a new client instead).
        """
        self._is_running = True
        self._run_client()

    def _run_client(self) -> None:
        """Start ``_thread``, which runs :meth:`_serve_forever`."""
        if not self._callable:
            return
        if self._thread.is_alive():
            raise SAMPClientError("Client is already running")
        try:
            self._thread.start()
        except RuntimeError:
            self._is_running = False
            raise SAMPClientError("Client already started once; create a new client") from None

    def _serve_forever(self) -> None:
        """Start serving the callback endpoint on its own threads (runs on ``_thread``).

        The endpoint serves until :meth:`stop` closes it.
        """
        self.client.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the client and close its endpoint.

        Parameters
        ----------
        timeout : float
            Seconds after which to give up waiting for the threads.

        Raises
        ------
        SAMPClientError
            The threads did not end within ``timeout``.
        """
        self._is_running = False
        thread = getattr(self, "_thread", None) if self._callable else None
        if thread is not None and thread.is_alive():
            thread.join(timeout)
        stopped = thread is None or not thread.is_alive()
        if stopped and self._callable and self.client is not None:
            stopped = self.client.stop(timeout)
        if not stopped:
            raise SAMPClientError(
                "Client was not shut down successfully (timeout=%ss)" % (timeout,))

    @property
    def is_running(self) -> bool:
        """bool: Whether the client is currently running."""
        return self._is_running

    @property
    def is_registered(self) -> bool:
        """bool: Whether the client is currently registered."""
        return self._is_registered

    # -- default bindings ----------------------------------------------------
    def _ping(self, private_key: str, sender_id: str, msg_id: str, msg_mtype: str,
              msg_params: Dict[str, Any], message: Dict[str, Any]) -> None:
        self.hub.reply(private_key, msg_id, {"samp.status": SAMP_STATUS_OK, "samp.result": {}})

    def _client_env_get(self, private_key: str, sender_id: str, msg_id: str, msg_mtype: str,
                        msg_params: Dict[str, Any], message: Dict[str, Any]) -> None:
        """Answer ``client.env.get``; not bound by default (it reveals the environment).

        Bind it explicitly to serve it:
        ``client.bind_receive_call("client.env.get", client._client_env_get)``.
        """
        name = msg_params.get("name") if isinstance(msg_params, dict) else None
        if isinstance(name, str) and name in os.environ:
            reply = {"samp.status": SAMP_STATUS_OK, "samp.result": {"value": os.environ[name]}}
        else:
            reply = {"samp.status": SAMP_STATUS_WARNING, "samp.result": {"value": ""},
                     "samp.error": {"samp.errortxt": "Environment variable not defined."}}
        self.hub.reply(private_key, msg_id, reply)

    # -- dispatch ------------------------------------------------------------
    def _handle_notification(self, private_key: str, sender_id: str,
                             message: Dict[str, Any]) -> str:
        if is_for_client(private_key, self.get_private_key(), message):
            run_notification_bindings(self._notification_bindings, private_key, sender_id,
                                      message)
        return ""

    def receive_notification(self, private_key: str, sender_id: str,
                             message: Dict[str, Any]) -> str:
        """Standard callable client ``receiveNotification`` method.

        Runs the functions bound with :meth:`bind_receive_notification` to
        the MType (or to a wildcard matching it). A subclass may override it;
        it must then return a string.

        Parameters
        ----------
        private_key : str
            Client private key (messages with another key are ignored).
        sender_id : str
            Sender public id.
        message : dict
            Received message.

        Returns
        -------
        confirmation : str
            An empty string.
        """
        return self._handle_notification(private_key, sender_id, message)

    def _handle_call(self, private_key: str, sender_id: str, msg_id: str,
                     message: Dict[str, Any]) -> str:
        if is_for_client(private_key, self.get_private_key(), message):
            run_call_bindings(self._call_bindings, private_key, sender_id, msg_id, message,
                              self.hub.reply)
        return ""

    def receive_call(self, private_key: str, sender_id: str, msg_id: str,
                     message: Dict[str, Any]) -> str:
        """Standard callable client ``receiveCall`` method.

        Runs the functions bound with :meth:`bind_receive_call` to the MType
        (or to a wildcard matching it); they reply with ``hub.reply``. If a
        binding raises, a ``samp.error`` response is sent for it. A subclass
        may override this method; it must then return a string.

        Parameters
        ----------
        private_key : str
            Client private key (messages with another key are ignored).
        sender_id : str
            Sender public id.
        msg_id : str
            Message id given by the hub.
        message : dict
            Received message.

        Returns
        -------
        confirmation : str
            An empty string.
        """
        return self._handle_call(private_key, sender_id, msg_id, message)

    def _handle_response(self, private_key: str, responder_id: str, msg_tag: str,
                         response: Dict[str, Any]) -> str:
        if private_key == self.get_private_key() and private_key is not None:
            run_response_binding(self._response_bindings, private_key, responder_id, msg_tag,
                                 response)
        return ""

    def receive_response(self, private_key: str, responder_id: str, msg_tag: str,
                         response: Dict[str, Any]) -> str:
        """Standard callable client ``receiveResponse`` method.

        Runs the function bound with :meth:`bind_receive_response` to
        ``msg_tag``. A subclass may override it; it must then return a string.

        Parameters
        ----------
        private_key : str
            Client private key (responses with another key are ignored).
        responder_id : str
            Responder public id.
        msg_tag : str
            Tag given when the call was made.
        response : dict
            Received response.

        Returns
        -------
        confirmation : str
            An empty string.
        """
        return self._handle_response(private_key, responder_id, msg_tag, response)

    # -- bindings ------------------------------------------------------------
    def _check_callable(self) -> None:
        if not self._callable:
            raise SAMPClientError("Client not callable.")

    def bind_receive_message(self, mtype: str, function: Callable[..., Any], declare: bool = True,
                             metadata: Optional[Dict[str, Any]] = None) -> None:
        """Bind an MType, for both calls and notifications, to a function.

        The function is called as ``function(private_key, sender_id, msg_id,
        mtype, params, extra)``; ``msg_id`` is ``None`` for a notification.

        Parameters
        ----------
        mtype : str
            MType (or wildcard pattern) to catch.
        function : callable
            Function called when ``mtype`` is received.
        declare : bool, optional
            Declare the new subscriptions to the hub at once.
        metadata : dict, optional
            Annotation map of the subscription.

        Raises
        ------
        SAMPClientError
            The client is not callable, or ``declare`` is set and it is not registered.
        """
        self.bind_receive_call(mtype, function, declare=declare, metadata=metadata)
        self.bind_receive_notification(mtype, function, declare=declare, metadata=metadata)

    def bind_receive_notification(self, mtype: str, function: Callable[..., Any],
                                  declare: bool = True,
                                  metadata: Optional[Dict[str, Any]] = None) -> None:
        """Bind an MType notification to a function.

        The function is called as ``function(private_key, sender_id, mtype,
        params, extra)`` (or with a ``None`` msg_id as third argument if it
        takes six arguments); ``extra`` holds the other message map entries.

        Parameters
        ----------
        mtype : str
            MType (or wildcard pattern) to catch.
        function : callable
            Function called when ``mtype`` is received.
        declare : bool, optional
            Declare the new subscriptions to the hub at once.
        metadata : dict, optional
            Annotation map of the subscription.

        Raises
        ------
        SAMPClientError
            The client is not callable, or ``declare`` is set and it is not registered.
        """
        self._check_callable()
        self._notification_bindings[mtype] = [function, metadata or {}]
        if declare:
            self._declare_subscriptions()

    def bind_receive_call(self, mtype: str, function: Callable[..., Any], declare: bool = True,
                          metadata: Optional[Dict[str, Any]] = None) -> None:
        """Bind an MType call to a function.

        The function is called as ``function(private_key, sender_id, msg_id,
        mtype, params, extra)`` and answers with ``hub.reply(private_key,
        msg_id, response)``.

        Parameters
        ----------
        mtype : str
            MType (or wildcard pattern) to catch.
        function : callable
            Function called when ``mtype`` is received.
        declare : bool, optional
            Declare the new subscriptions to the hub at once.
        metadata : dict, optional
            Annotation map of the subscription.

        Raises
        ------
        SAMPClientError
            The client is not callable, or ``declare`` is set and it is not registered.
        """
        self._check_callable()
        self._call_bindings[mtype] = [function, metadata or {}]
        if declare:
            self._declare_subscriptions()

    def bind_receive_response(self, msg_tag: str, function: Callable[..., Any]) -> None:
        """Bind the response to a message tag to a function.

        The function is called as ``function(private_key, responder_id,
        msg_tag, response)``.

        Parameters
        ----------
        msg_tag : str
            Message tag to catch.
        function : callable
            Function called when a response with ``msg_tag`` arrives.

        Raises
        ------
        SAMPClientError
            The client is not callable.
        """
        self._check_callable()
        self._response_bindings[msg_tag] = function

    def unbind_receive_notification(self, mtype: str, declare: bool = True) -> None:
        """Remove a notification binding (and unsubscribe if ``declare``).

        Parameters
        ----------
        mtype : str
            MType to remove.
        declare : bool
            Declare the new subscriptions to the hub at once.

        Raises
        ------
        SAMPClientError
            The client is not callable.
        KeyError
            ``mtype`` was not bound.
        """
        self._check_callable()
        del self._notification_bindings[mtype]
        if declare:
            self._declare_subscriptions()

    def unbind_receive_call(self, mtype: str, declare: bool = True) -> None:
        """Remove a call binding (and unsubscribe if ``declare``).

        Parameters
        ----------
        mtype : str
            MType to remove.
        declare : bool
            Declare the new subscriptions to the hub at once.

        Raises
        ------
        SAMPClientError
            The client is not callable.
        KeyError
            ``mtype`` was not bound.
        """
        self._check_callable()
        del self._call_bindings[mtype]
        if declare:
            self._declare_subscriptions()

    def unbind_receive_response(self, msg_tag: str) -> None:
        """Remove a response binding.

        Parameters
        ----------
        msg_tag : str
            Message tag to remove.

        Raises
        ------
        SAMPClientError
            The client is not callable.
        KeyError
            ``msg_tag`` was not bound.
        """
        self._check_callable()
        del self._response_bindings[msg_tag]

    def declare_subscriptions(self, subscriptions: Optional[Dict[str, Any]] = None) -> None:
        """Declare to the hub the MTypes bound so far, plus ``subscriptions``.

        Parameters
        ----------
        subscriptions : dict, optional
            Extra ``{mtype: annotation-map}`` entries.

        Raises
        ------
        SAMPClientError
            The client is not callable or not registered.
        """
        self._check_callable()
        self._declare_subscriptions(subscriptions)

    def _declare_subscriptions(self, subscriptions: Optional[Dict[str, Any]] = None) -> None:
        if not (self.hub.is_connected and self._private_key is not None):
            raise SAMPClientError("Unable to declare subscriptions. Hub unreachable or not "
                                  "connected or client not registered.")
        mtypes: Dict[str, Any] = {}
        for bindings in (self._notification_bindings, self._call_bindings):
            for mtype, (_, annotation) in list(bindings.items()):
                mtypes[mtype] = copy.deepcopy(annotation)
        if subscriptions:
            mtypes.update(copy.deepcopy(subscriptions))
        self.hub.declare_subscriptions(self._private_key, mtypes)

    # -- registration ----------------------------------------------------------
    def register(self) -> None:
        """Register the client with the hub, declare its callback, subscriptions and metadata.

        Raises
        ------
        SAMPClientError
            Already registered, the hub proxy is not connected, or the hub's
            answer lacks an id or key.
        """
        if not self.hub.is_connected:
            raise SAMPClientError("Unable to register to the SAMP Hub. Hub proxy not connected.")
        if self._private_key is not None:
            raise SAMPClientError("Client already registered")
        result = self.hub.register(self.hub.lockfile["samp.secret"])
        if not result.get("samp.self-id"):
            raise SAMPClientError("Registration failed - samp.self-id was not set by the hub.")
        if not result.get("samp.private-key"):
            raise SAMPClientError("Registration failed - samp.private-key was not set by the hub.")
        self._public_id = result["samp.self-id"]
        self._private_key = result["samp.private-key"]
        self._hub_id = result.get("samp.hub-id")
        if self._callable:
            self._set_xmlrpc_callback()
            self._declare_subscriptions()
        if self._metadata != {}:
            self.declare_metadata()
        self._is_registered = True

    def unregister(self) -> None:
        """Unregister the client from the hub.

        Raises
        ------
        SAMPClientError
            The hub proxy is not connected.
        """
        if not self.hub.is_connected:
            raise SAMPClientError(
                "Unable to unregister from the SAMP Hub. Hub proxy not connected.")
        self._is_registered = False
        key, self._private_key = self._private_key, None
        self._hub_id = None
        self._public_id = None
        if key is not None:  # not registered: nothing to tell the hub
            self.hub.unregister(key)

    def _set_xmlrpc_callback(self) -> None:
        if self.hub.is_connected and self._private_key is not None:
            self.hub.set_xmlrpc_callback(self._private_key, self._xmlrpcAddr)

    def declare_metadata(self, metadata: Optional[Dict[str, Any]] = None) -> None:
        """Declare the client metadata to the hub.

        Parameters
        ----------
        metadata : dict, optional
            Entries added to the metadata given at construction.

        Raises
        ------
        SAMPClientError
            The client is not registered.
        """
        if not (self.hub.is_connected and self._private_key is not None):
            raise SAMPClientError("Unable to declare metadata. Hub unreachable or not "
                                  "connected or client not registered.")
        if metadata is not None:
            self._metadata.update(metadata)
        self.hub.declare_metadata(self._private_key, self._metadata)

    def get_private_key(self) -> Optional[str]:
        """Return the private key obtained at registration (``samp.private-key``).

        Returns
        -------
        key : str
            Client private key, ``None`` when not registered.
        """
        return self._private_key

    def get_public_id(self) -> Optional[str]:
        """Return the public id obtained at registration (``samp.self-id``).

        Returns
        -------
        id : str
            Client public id, ``None`` when not registered.
        """
        return self._public_id
