"""Collection of ``request_*``, ``inform_*`` and ``reply_*`` handlers by metaclass.

A leaf module: it imports nothing from the package. Re-exported by
:mod:`katcp_compat.core`.
"""

from typing import Any, Callable, Dict, Tuple

__all__ = ["convert_method_name", "DeviceMetaclass", "DeviceServerMetaclass"]


def convert_method_name(prefix: str, name: str) -> str:
    """Convert a handler method name to its KATCP message name.

    Parameters
    ----------
    prefix : str
        The handler prefix, e.g. ``"request_"``.
    name : str
        The method name, e.g. ``"request_sensor_list"``.

    Returns
    -------
    message_name : str
        The message name, e.g. ``"sensor-list"``.
    """
    return name[len(prefix):].replace("_", "-")


class DeviceMetaclass(type):
    """Metaclass of device servers and clients that collects message handlers.

    Methods named ``request_<name>``, ``inform_<name>`` and ``reply_<name>``
    (underscores in ``<name>`` become dashes) are collected into the class
    dictionaries ``_request_handlers``, ``_inform_handlers`` and
    ``_reply_handlers``. Each must have a docstring: ``?help`` sends it.
    ``reply_inform`` is a server method, not a handler.

    Raises
    ------
    AssertionError
        When a handler has no docstring, e.g.
        ``Request 'boom' has no docstring.``
    """

    def __init__(cls, name: str, bases: Tuple[type, ...], dct: Dict[str, Any]) -> None:
        super().__init__(name, bases, dct)
        cls._request_handlers: Dict[str, Callable[..., Any]] = {}
        cls._inform_handlers: Dict[str, Callable[..., Any]] = {}
        cls._reply_handlers: Dict[str, Callable[..., Any]] = {}
        for attr in dir(cls):
            if attr.startswith("request_"):
                prefix, table, kind = "request_", cls._request_handlers, "Request"
            elif attr.startswith("inform_"):
                prefix, table, kind = "inform_", cls._inform_handlers, "Inform"
            elif attr.startswith("reply_") and attr != "reply_inform":
                prefix, table, kind = "reply_", cls._reply_handlers, "Reply"
            else:
                continue
            handler = getattr(cls, attr)
            if not callable(handler) or not cls.check_protocol(handler):
                continue
            msg_name = convert_method_name(prefix, attr)
            table[msg_name] = handler
            assert handler.__doc__ is not None, "%s '%s' has no docstring." % (kind, msg_name)

    def check_protocol(cls, handler: Callable[..., Any]) -> bool:
        """Return False if ``handler`` should be left out of the handler tables.

        Parameters
        ----------
        handler : callable
            A ``request_*``, ``inform_*`` or ``reply_*`` method.

        Returns
        -------
        keep : bool
            Always True here; clients cannot know protocol flags at class
            creation.
        """
        return True


class DeviceServerMetaclass(DeviceMetaclass):
    """:class:`DeviceMetaclass` that also filters handlers by ``PROTOCOL_INFO``.

    A handler marked with
    :func:`~katcp_compat.kattypes.minimum_katcp_version` or
    :func:`~katcp_compat.kattypes.has_katcp_protocol_flags` is left out when
    the class's ``PROTOCOL_INFO`` does not satisfy it.
    """

    def check_protocol(cls, handler: Callable[..., Any]) -> bool:
        """Whether the class's ``PROTOCOL_INFO`` satisfies the handler's needs.

        Parameters
        ----------
        handler : callable
            A handler method.

        Returns
        -------
        keep : bool
            False if the handler needs a newer version or missing flags.
        """
        info = getattr(cls, "PROTOCOL_INFO", None)
        if info is None:
            return True
        min_version = getattr(handler, "_minimum_katcp_version", None)
        if min_version is not None and (info.major, info.minor) < tuple(min_version):
            return False
        needed = getattr(handler, "_has_katcp_protocol_flags", None)
        if needed is not None:
            return all(info.supports(flag) for flag in needed)
        return True
