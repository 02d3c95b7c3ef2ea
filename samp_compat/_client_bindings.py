"""Binding of MTypes and message tags to functions, for :class:`~samp_compat.client.SAMPClient`."""
import copy
from typing import Any, Callable, Dict, List, Optional

from .errors import SAMPClientError


class _BindingsMixin:
    """The bind/unbind/declare_subscriptions half of a SAMP client.

    The class using it provides ``hub``, ``_callable``, ``_private_key`` and
    the three binding tables.
    """

    hub: Any
    _callable: bool
    _private_key: Optional[str]
    _notification_bindings: Dict[str, List[Any]]
    _call_bindings: Dict[str, List[Any]]
    _response_bindings: Dict[str, Callable[..., Any]]

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
