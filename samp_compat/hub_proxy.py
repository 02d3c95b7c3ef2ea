"""Client-side proxy of a SAMP hub (Standard Profile)."""
import copy
import xmlrpc.client
from typing import Any, Dict, List, Optional

from .errors import SAMPHubError, SAMPProxyError
from .lockfile_helpers import get_main_running_hub
from .utils import (
    CALL_AND_WAIT_MARGIN,
    SAMPXXEServerProxy,
    ServerProxyPool,
    _timeout_fault,
)

__all__ = ["SAMPHubProxy"]

_HTTP_UNAUTHORIZED = 401


def _call_and_wait_socket_timeout(timeout: Any) -> Optional[float]:
    """Socket timeout for a ``callAndWait`` carrying SAMP timeout ``timeout``.

    A SAMP timeout of zero or less means "wait forever", so the socket waits
    forever too; otherwise it waits a little longer than the hub does.
    """
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        return None
    if seconds <= 0:
        return None
    return seconds + CALL_AND_WAIT_MARGIN


class SAMPHubProxy:
    """Proxy to simplify a client's interaction with a SAMP hub.

    Every method maps one-to-one to a ``samp.hub.*`` XML-RPC method of the
    Standard Profile. Faults come back as
    :class:`~samp_compat.errors.SAMPProxyError` (a
    :class:`~samp_compat.errors.SAMPProxyTimeoutError` for an expired
    ``callAndWait``). Each request has a socket timeout.
    """

    def __init__(self) -> None:
        self.proxy: Optional[ServerProxyPool] = None
        self._connected = False
        self.lockfile: Dict[str, str] = {}

    @property
    def is_connected(self) -> bool:
        """bool: Whether the proxy is connected to a hub."""
        return self._connected

    def connect(self, hub: Any = None, hub_params: Optional[Dict[str, str]] = None,
                pool_size: int = 20) -> None:
        """Connect to a SAMP hub.

        Parameters
        ----------
        hub : SAMPHubServer, optional
            A running hub to connect to.
        hub_params : dict, optional
            Lockfile content of the hub, ``{token-name: token-string}``.
            Without ``hub`` and ``hub_params`` the running hub is found from
            ``$SAMP_HUB`` or the ``~/.samp`` lockfile.
        pool_size : int, optional
            Number of connections kept to the hub.

        Raises
        ------
        ValueError
            Both ``hub`` and ``hub_params`` were given.
        SAMPHubError
            No running hub was found, or it refused access.
        """
        self._connected = False
        self.lockfile = {}
        if hub is not None and hub_params is not None:
            raise ValueError("Cannot specify both hub and hub_params")
        if hub_params is None:
            if hub is not None:
                if not hub.is_running:
                    raise SAMPHubError("Hub is not running")
                hub_params = hub.params
            else:
                hub_params = get_main_running_hub()
        if self.proxy is not None:
            self.proxy.shutdown()
            self.proxy = None
        try:
            url = hub_params["samp.hub.xmlrpc.url"].replace("\\", "")
        except (KeyError, TypeError, AttributeError):
            raise SAMPHubError("Hub parameters have no samp.hub.xmlrpc.url") from None
        self.proxy = ServerProxyPool(pool_size, SAMPXXEServerProxy, url, allow_none=1)
        try:
            self.ping()
        except xmlrpc.client.ProtocolError as exc:
            self._drop_pool()
            if exc.errcode == _HTTP_UNAUTHORIZED:
                raise SAMPHubError(
                    "Unauthorized access. Basic Authentication required or failed.") from None
            raise SAMPHubError("Protocol Error %s: %s" % (exc.errcode, exc.errmsg)) from None
        except BaseException:
            self._drop_pool()
            raise
        self.lockfile = copy.deepcopy(dict(hub_params))
        self._connected = True

    def _drop_pool(self) -> None:
        if self.proxy is not None:
            self.proxy.shutdown()
            self.proxy = None

    def disconnect(self) -> None:
        """Disconnect from the hub and close the connections."""
        self._drop_pool()
        self._connected = False
        self.lockfile = {}

    @property
    def _samp_hub(self) -> Any:
        """Remote ``samp.hub`` namespace (another profile may override it)."""
        if self.proxy is None:
            raise SAMPHubError("Hub proxy not connected")
        return self.proxy.samp.hub

    def ping(self) -> str:
        """Proxy to ``samp.hub.ping``.

        Returns
        -------
        answer : str
            What the hub returns (``"1"`` for astropy hubs).
        """
        return self._samp_hub.ping()

    def set_xmlrpc_callback(self, private_key: str, xmlrpc_addr: str) -> Any:
        """Proxy to ``samp.hub.setXmlrpcCallback``.

        Parameters
        ----------
        private_key : str
            Client private key.
        xmlrpc_addr : str
            URL of the client's callback server.
        """
        return self._samp_hub.setXmlrpcCallback(private_key, xmlrpc_addr)

    def register(self, secret: str) -> Dict[str, str]:
        """Proxy to ``samp.hub.register``.

        Parameters
        ----------
        secret : str
            The ``samp.secret`` of the lockfile.

        Returns
        -------
        result : dict
            ``samp.private-key``, ``samp.self-id`` and ``samp.hub-id``.
        """
        return self._samp_hub.register(secret)

    def unregister(self, private_key: str) -> Any:
        """Proxy to ``samp.hub.unregister``.

        Parameters
        ----------
        private_key : str
            Client private key.
        """
        return self._samp_hub.unregister(private_key)

    def declare_metadata(self, private_key: str, metadata: Dict[str, Any]) -> Any:
        """Proxy to ``samp.hub.declareMetadata``.

        Parameters
        ----------
        private_key : str
            Client private key.
        metadata : dict
            Metadata map of the client.
        """
        return self._samp_hub.declareMetadata(private_key, metadata)

    def get_metadata(self, private_key: str, client_id: str) -> Dict[str, Any]:
        """Proxy to ``samp.hub.getMetadata``.

        Parameters
        ----------
        private_key : str
            Client private key.
        client_id : str
            Public id of the client asked about.

        Returns
        -------
        metadata : dict
            Its metadata map.
        """
        return self._samp_hub.getMetadata(private_key, client_id)

    def declare_subscriptions(self, private_key: str, subscriptions: Dict[str, Any]) -> Any:
        """Proxy to ``samp.hub.declareSubscriptions``.

        Parameters
        ----------
        private_key : str
            Client private key.
        subscriptions : dict
            ``{mtype-pattern: annotation-map}``.
        """
        return self._samp_hub.declareSubscriptions(private_key, subscriptions)

    def get_subscriptions(self, private_key: str, client_id: str) -> Dict[str, Any]:
        """Proxy to ``samp.hub.getSubscriptions``.

        Parameters
        ----------
        private_key : str
            Client private key.
        client_id : str
            Public id of the client asked about.

        Returns
        -------
        subscriptions : dict
            Its subscriptions map.
        """
        return self._samp_hub.getSubscriptions(private_key, client_id)

    def get_registered_clients(self, private_key: str) -> List[str]:
        """Proxy to ``samp.hub.getRegisteredClients``.

        Parameters
        ----------
        private_key : str
            Client private key.

        Returns
        -------
        ids : list of str
            Public ids of the other registered clients.
        """
        return self._samp_hub.getRegisteredClients(private_key)

    def get_subscribed_clients(self, private_key: str, mtype: str) -> Dict[str, Any]:
        """Proxy to ``samp.hub.getSubscribedClients``.

        Parameters
        ----------
        private_key : str
            Client private key.
        mtype : str
            MType asked about.

        Returns
        -------
        clients : dict
            ``{public-id: annotation-map}`` of the other subscribed clients.
        """
        return self._samp_hub.getSubscribedClients(private_key, mtype)

    def notify(self, private_key: str, recipient_id: str, message: Dict[str, Any]) -> Any:
        """Proxy to ``samp.hub.notify``.

        Parameters
        ----------
        private_key : str
            Client private key.
        recipient_id : str
            Public id of the recipient.
        message : dict
            ``{"samp.mtype": ..., "samp.params": {...}}``.
        """
        return self._samp_hub.notify(private_key, recipient_id, message)

    def notify_all(self, private_key: str, message: Dict[str, Any]) -> List[str]:
        """Proxy to ``samp.hub.notifyAll``.

        Parameters
        ----------
        private_key : str
            Client private key.
        message : dict
            The message.

        Returns
        -------
        recipients : list of str
            Public ids of the clients notified.
        """
        return self._samp_hub.notifyAll(private_key, message)

    def call(self, private_key: str, recipient_id: str, msg_tag: str,
             message: Dict[str, Any]) -> str:
        """Proxy to ``samp.hub.call``.

        Parameters
        ----------
        private_key : str
            Client private key.
        recipient_id : str
            Public id of the recipient.
        msg_tag : str
            Tag the response will carry.
        message : dict
            The message.

        Returns
        -------
        msg_id : str
            Message id given by the hub.
        """
        return self._samp_hub.call(private_key, recipient_id, msg_tag, message)

    def call_all(self, private_key: str, msg_tag: str, message: Dict[str, Any]) -> Dict[str, str]:
        """Proxy to ``samp.hub.callAll``.

        Parameters
        ----------
        private_key : str
            Client private key.
        msg_tag : str
            Tag the responses will carry.
        message : dict
            The message.

        Returns
        -------
        msg_ids : dict
            ``{recipient-id: msg-id}``.
        """
        return self._samp_hub.callAll(private_key, msg_tag, message)

    def call_and_wait(self, private_key: str, recipient_id: str, message: Dict[str, Any],
                      timeout: str) -> Dict[str, Any]:
        """Proxy to ``samp.hub.callAndWait``.

        Parameters
        ----------
        private_key : str
            Client private key.
        recipient_id : str
            Public id of the recipient.
        message : dict
            The message.
        timeout : str
            Seconds the hub waits for the response (``"0"``: forever).

        Returns
        -------
        response : dict
            The recipient's response map.

        Raises
        ------
        SAMPProxyTimeoutError
            The hub reported that the timeout expired.
        """
        if self.proxy is None:
            raise SAMPHubError("Hub proxy not connected")
        try:
            return self.proxy._call(
                "samp.hub.callAndWait", (private_key, recipient_id, message, timeout),
                timeout=_call_and_wait_socket_timeout(timeout))
        except SAMPProxyError as exc:
            raise _timeout_fault(exc) from None

    def reply(self, private_key: str, msg_id: str, response: Dict[str, Any]) -> Any:
        """Proxy to ``samp.hub.reply``.

        Parameters
        ----------
        private_key : str
            Client private key.
        msg_id : str
            Id of the call answered.
        response : dict
            Response map (``samp.status``, ``samp.result``, ``samp.error``).
        """
        return self._samp_hub.reply(private_key, msg_id, response)
