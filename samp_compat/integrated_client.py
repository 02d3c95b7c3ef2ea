"""SAMPIntegratedClient: a hub proxy and a client behind one simple API."""
from typing import Any, Callable, Dict, List, Optional, cast

from .client import SAMPClient
from .hub_proxy import SAMPHubProxy

__all__ = ["SAMPIntegratedClient"]

_EXTRA_KWS = "extra_kws"


class SAMPIntegratedClient:
    """A simple SAMP client: connect, send and receive with one object.

    Each :meth:`connect` builds a fresh :class:`~samp_compat.client.SAMPClient`,
    so a client can disconnect and connect again.

    Parameters
    ----------
    name : str, optional
        Client name (``samp.name`` metadata).
    description : str, optional
        Client description (``samp.description.text`` metadata).
    metadata : dict, optional
        Client metadata in the standard SAMP form.
    addr : str, optional
        Listening address of the callable endpoint (default 127.0.0.1).
    port : int, optional
        Listening port; 0 (the default) lets the system choose.
    https : bool, optional
        Serve the callable endpoint over TLS.
    key_file, cert_file : str, optional
        Key and certificate of the TLS endpoint.
    cert_reqs : int, optional
        Whether the hub must present a certificate (``ssl.CERT_*``).
    ca_certs : str, optional
        CA certificates used to check the hub's certificate.
    ssl_version : int, optional
        ``ssl.PROTOCOL_*`` constant of the endpoint.
    callable : bool, optional
        Whether the client can receive calls and notifications.
    """

    def __init__(self, name: Optional[str] = None, description: Optional[str] = None,
                 metadata: Optional[Dict[str, Any]] = None, addr: Optional[str] = None,
                 port: int = 0, https: bool = False, key_file: Optional[str] = None,
                 cert_file: Optional[str] = None, cert_reqs: int = 0,
                 ca_certs: Optional[str] = None, ssl_version: Optional[int] = None,
                 callable: bool = True) -> None:
        self.hub = SAMPHubProxy()
        #: Arguments of the :class:`SAMPClient` made by each :meth:`connect`.
        self.client_arguments: Dict[str, Any] = {
            "name": name, "description": description, "metadata": metadata,
            "addr": addr, "port": port, "callable": callable,
        }
        if https:
            self.client_arguments.update(https=https, key_file=key_file, cert_file=cert_file,
                                         cert_reqs=cert_reqs, ca_certs=ca_certs,
                                         ssl_version=ssl_version)
        #: The current :class:`SAMPClient` (made by :meth:`connect`).
        self.client: Optional[SAMPClient] = None

    @property
    def is_connected(self) -> bool:
        """bool: Whether the client is connected to a hub and running."""
        return self.hub.is_connected and self.client is not None and self.client.is_running

    def connect(self, hub: Any = None, hub_params: Optional[Dict[str, str]] = None,
                pool_size: int = 20) -> None:
        """Connect to a hub, start the client and register it.

        Parameters
        ----------
        hub : SAMPHubServer, optional
            A running hub.
        hub_params : dict, optional
            Lockfile content of the hub; without ``hub`` and ``hub_params``
            the running hub is found through ``$SAMP_HUB`` or ``~/.samp``.
        pool_size : int, optional
            Number of connections kept to the hub.

        Raises
        ------
        SAMPHubError
            No hub could be reached.

        Notes
        -----
        Connecting while connected first disconnects the current client.
        """
        if self.is_connected:
            self.disconnect()
        self.hub.connect(hub, hub_params, pool_size)
        metadata = self.client_arguments.get("metadata")
        arguments = dict(self.client_arguments)
        if metadata is not None:
            arguments["metadata"] = dict(metadata)
        client = None
        try:
            client = SAMPClient(self.hub, **arguments)
            client.start()
            client.register()
        except BaseException:
            if client is not None and client.is_running:
                client.stop()
            elif client is not None and client.client is not None:
                client.client.stop(0)
            self.hub.disconnect()
            raise
        self.client = client

    def disconnect(self) -> None:
        """Unregister, stop the client and disconnect from the hub (no-op if not connected)."""
        client = self.client
        if self.is_connected and client is not None:
            try:
                client.unregister()
            finally:
                try:
                    if client.is_running:
                        client.stop()
                finally:
                    self.hub.disconnect()

    def _current(self) -> SAMPClient:
        # None before the first connect: using it raises AttributeError, as in astropy.
        return cast(SAMPClient, self.client)

    # -- hub proxies -------------------------------------------------------------
    def ping(self) -> str:
        """Proxy to ``samp.hub.ping``.

        Returns
        -------
        answer : str
            The hub's answer.
        """
        return self.hub.ping()

    def declare_metadata(self, metadata: Dict[str, Any]) -> None:
        """Proxy to ``samp.hub.declareMetadata``.

        Parameters
        ----------
        metadata : dict
            Entries added to the client's metadata.
        """
        self._current().declare_metadata(metadata)

    def get_metadata(self, client_id: str) -> Dict[str, Any]:
        """Proxy to ``samp.hub.getMetadata``.

        Parameters
        ----------
        client_id : str
            Public id of a client.

        Returns
        -------
        metadata : dict
        """
        return self.hub.get_metadata(self.get_private_key(), client_id)

    def get_subscriptions(self, client_id: str) -> Dict[str, Any]:
        """Proxy to ``samp.hub.getSubscriptions``.

        Parameters
        ----------
        client_id : str
            Public id of a client.

        Returns
        -------
        subscriptions : dict
        """
        return self.hub.get_subscriptions(self.get_private_key(), client_id)

    def get_registered_clients(self) -> List[str]:
        """Proxy to ``samp.hub.getRegisteredClients`` (every client but this one).

        Returns
        -------
        ids : list of str
        """
        return self.hub.get_registered_clients(self.get_private_key())

    def get_subscribed_clients(self, mtype: str) -> Dict[str, Any]:
        """Proxy to ``samp.hub.getSubscribedClients``.

        Parameters
        ----------
        mtype : str
            MType asked about.

        Returns
        -------
        clients : dict
            ``{public-id: annotation-map}``.
        """
        return self.hub.get_subscribed_clients(self.get_private_key(), mtype)

    @staticmethod
    def _format_easy_msg(mtype: str, params: Dict[str, Any]) -> Dict[str, Any]:
        params = dict(params)
        extra = params.pop(_EXTRA_KWS, None)
        msg = {"samp.mtype": mtype, "samp.params": params}
        if extra:
            msg.update(extra)
        return msg

    def notify(self, recipient_id: str, message: Dict[str, Any]) -> Any:
        """Proxy to ``samp.hub.notify``.

        Parameters
        ----------
        recipient_id : str
            Public id of the recipient.
        message : dict
            ``{"samp.mtype": ..., "samp.params": {...}}``.
        """
        return self.hub.notify(self.get_private_key(), recipient_id, message)

    def enotify(self, recipient_id: str, mtype: str, **params: Any) -> Any:
        """Notify ``mtype`` with keyword parameters.

        Parameters
        ----------
        recipient_id : str
            Public id of the recipient.
        mtype : str
            MType notified.
        **params
            ``samp.params`` entries; ``extra_kws`` (a dict) is merged into the
            message map itself.
        """
        return self.notify(recipient_id, self._format_easy_msg(mtype, params))

    def notify_all(self, message: Dict[str, Any]) -> List[str]:
        """Proxy to ``samp.hub.notifyAll``.

        Parameters
        ----------
        message : dict
            The message.

        Returns
        -------
        recipients : list of str
        """
        return self.hub.notify_all(self.get_private_key(), message)

    def enotify_all(self, mtype: str, **params: Any) -> List[str]:
        """Notify ``mtype`` with keyword parameters to every subscribed client.

        Parameters
        ----------
        mtype : str
            MType notified.
        **params
            ``samp.params`` entries; ``extra_kws`` is merged into the message.

        Returns
        -------
        recipients : list of str
        """
        return self.notify_all(self._format_easy_msg(mtype, params))

    def call(self, recipient_id: str, msg_tag: str, message: Dict[str, Any]) -> str:
        """Proxy to ``samp.hub.call``.

        Parameters
        ----------
        recipient_id : str
            Public id of the recipient.
        msg_tag : str
            Tag the response will carry.
        message : dict
            The message.

        Returns
        -------
        msg_id : str
        """
        return self.hub.call(self.get_private_key(), recipient_id, msg_tag, message)

    def ecall(self, recipient_id: str, msg_tag: str, mtype: str, **params: Any) -> str:
        """Call ``mtype`` with keyword parameters.

        Parameters
        ----------
        recipient_id : str
            Public id of the recipient.
        msg_tag : str
            Tag the response will carry.
        mtype : str
            MType called.
        **params
            ``samp.params`` entries; ``extra_kws`` is merged into the message.

        Returns
        -------
        msg_id : str
        """
        return self.call(recipient_id, msg_tag, self._format_easy_msg(mtype, params))

    def call_all(self, msg_tag: str, message: Dict[str, Any]) -> Dict[str, str]:
        """Proxy to ``samp.hub.callAll``.

        Parameters
        ----------
        msg_tag : str
            Tag the responses will carry.
        message : dict
            The message.

        Returns
        -------
        msg_ids : dict
            ``{recipient-id: msg-id}``.
        """
        return self.hub.call_all(self.get_private_key(), msg_tag, message)

    def ecall_all(self, msg_tag: str, mtype: str, **params: Any) -> Dict[str, str]:
        """Call ``mtype`` with keyword parameters on every subscribed client.

        Parameters
        ----------
        msg_tag : str
            Tag the responses will carry.
        mtype : str
            MType called.
        **params
            ``samp.params`` entries; ``extra_kws`` is merged into the message.

        Returns
        -------
        msg_ids : dict
            ``{recipient-id: msg-id}``.
        """
        return self.call_all(msg_tag, self._format_easy_msg(mtype, params))

    def call_and_wait(self, recipient_id: str, message: Dict[str, Any],
                      timeout: str) -> Dict[str, Any]:
        """Proxy to ``samp.hub.callAndWait``.

        Parameters
        ----------
        recipient_id : str
            Public id of the recipient.
        message : dict
            The message.
        timeout : str
            Seconds to wait (``"0"``: forever).

        Returns
        -------
        response : dict

        Raises
        ------
        SAMPProxyTimeoutError
            No response came in time.
        """
        return self.hub.call_and_wait(self.get_private_key(), recipient_id, message, timeout)

    def ecall_and_wait(self, recipient_id: str, mtype: str, timeout: str,
                       **params: Any) -> Dict[str, Any]:
        """Call ``mtype`` with keyword parameters and wait for the response.

        Parameters
        ----------
        recipient_id : str
            Public id of the recipient.
        mtype : str
            MType called.
        timeout : str
            Seconds to wait (``"0"``: forever).
        **params
            ``samp.params`` entries; ``extra_kws`` is merged into the message.

        Returns
        -------
        response : dict
        """
        return self.call_and_wait(recipient_id, self._format_easy_msg(mtype, params), timeout)

    def reply(self, msg_id: str, response: Dict[str, Any]) -> Any:
        """Proxy to ``samp.hub.reply``.

        Parameters
        ----------
        msg_id : str
            Id of the call answered.
        response : dict
            Response map.
        """
        return self.hub.reply(self.get_private_key(), msg_id, response)

    @staticmethod
    def _format_easy_response(status: str, result: Optional[Dict[str, Any]],
                              error: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        msg: Dict[str, Any] = {"samp.status": status}
        if result is not None:
            msg["samp.result"] = result
        if error is not None:
            msg["samp.error"] = error
        return msg

    def ereply(self, msg_id: str, status: str, result: Optional[Dict[str, Any]] = None,
               error: Optional[Dict[str, Any]] = None) -> Any:
        """Reply to a call from its parts.

        Parameters
        ----------
        msg_id : str
            Id of the call answered.
        status : str
            ``samp.status`` (``SAMP_STATUS_OK``, ``_WARNING`` or ``_ERROR``).
        result : dict, optional
            ``samp.result`` map.
        error : dict, optional
            ``samp.error`` map.
        """
        return self.reply(msg_id, self._format_easy_response(status, result, error))

    # -- client proxies --------------------------------------------------------
    def receive_notification(self, private_key: str, sender_id: str,
                             message: Dict[str, Any]) -> str:
        return self._current().receive_notification(private_key, sender_id, message)

    def receive_call(self, private_key: str, sender_id: str, msg_id: str,
                     message: Dict[str, Any]) -> str:
        return self._current().receive_call(private_key, sender_id, msg_id, message)

    def receive_response(self, private_key: str, responder_id: str, msg_tag: str,
                         response: Dict[str, Any]) -> str:
        return self._current().receive_response(private_key, responder_id, msg_tag, response)

    def bind_receive_message(self, mtype: str, function: Callable[..., Any], declare: bool = True,
                             metadata: Optional[Dict[str, Any]] = None) -> None:
        self._current().bind_receive_message(mtype, function, declare=declare, metadata=metadata)

    def bind_receive_notification(self, mtype: str, function: Callable[..., Any],
                                  declare: bool = True,
                                  metadata: Optional[Dict[str, Any]] = None) -> None:
        self._current().bind_receive_notification(mtype, function, declare, metadata)

    def bind_receive_call(self, mtype: str, function: Callable[..., Any], declare: bool = True,
                          metadata: Optional[Dict[str, Any]] = None) -> None:
        self._current().bind_receive_call(mtype, function, declare, metadata)

    def bind_receive_response(self, msg_tag: str, function: Callable[..., Any]) -> None:
        self._current().bind_receive_response(msg_tag, function)

    def unbind_receive_notification(self, mtype: str, declare: bool = True) -> None:
        self._current().unbind_receive_notification(mtype, declare)

    def unbind_receive_call(self, mtype: str, declare: bool = True) -> None:
        self._current().unbind_receive_call(mtype, declare)

    def unbind_receive_response(self, msg_tag: str) -> None:
        self._current().unbind_receive_response(msg_tag)

    def declare_subscriptions(self, subscriptions: Optional[Dict[str, Any]] = None) -> None:
        self._current().declare_subscriptions(subscriptions)

    def get_private_key(self) -> Optional[str]:
        return self._current().get_private_key()

    def get_public_id(self) -> Optional[str]:
        return self._current().get_public_id()


for _name in ("receive_notification", "receive_call", "receive_response",
              "bind_receive_message", "bind_receive_notification", "bind_receive_call",
              "bind_receive_response", "unbind_receive_notification", "unbind_receive_call",
              "unbind_receive_response", "declare_subscriptions", "get_private_key",
              "get_public_id"):
    getattr(SAMPIntegratedClient, _name).__doc__ = getattr(SAMPClient, _name).__doc__
del _name
