"""KATCP value types and the request/reply decorators.

Each type converts between a Python value and the unescaped bytes of one
KATCP argument: ``pack(value)`` checks and encodes, ``unpack(bytes)`` decodes
and checks. The decorators :func:`request`, :func:`return_reply` and
:func:`send_reply` use them to turn a handler's message arguments into
Python arguments and its return value into a reply :class:`Message`. The
error texts match the original library, because clients match on them
(``Error in parameter 1 (i): Could not parse value 'b'x'' as integer.``).
"""

import concurrent.futures
import inspect
import itertools
from functools import partial, update_wrapper, wraps
from typing import Any, Callable, Iterable, List, Optional, Sequence

from ._kattype_values import (Address, Bool, Discrete, DiscreteMulti, Float, Int, KatcpType, Lru,
                              Regex, Str, StrictTimestamp, Struct, Timestamp, TimestampOrNow)
from ._codec import Message
from ._errors import FailReply
from ._handlers import convert_method_name
from ._protocol import DEFAULT_KATCP_MAJOR
from ._text import to_str

__all__ = [
    "KatcpType", "Int", "Float", "Bool", "Str", "Discrete", "DiscreteMulti", "Lru",
    "Address", "Timestamp", "TimestampOrNow", "StrictTimestamp", "Struct", "Regex",
    "Parameter", "request", "inform", "unpack_message", "return_reply", "send_reply",
    "make_reply", "concurrent_reply", "minimum_katcp_version", "has_katcp_protocol_flags",
    "request_timeout_hint", "unpack_types", "pack_types", "async_make_reply",
]

_OK, _FAIL = "ok", "fail"
#: First-parameter names by which katcp 0.5's decorators recognised a request context.
_REQ_PARAMETER_NAMES = ("req", "sock")


class Parameter:
    """A type at a position of a request, used to word parse errors.

    Parameters
    ----------
    position : int
        1-based position.
    name : str
        The handler's argument name.
    kattype : KatcpType
        The type.
    major : int
        KATCP major version.
    """

    def __init__(self, position: int, name: str, kattype: KatcpType, major: int) -> None:
        self.position = position
        self.name = name
        self._kattype = kattype
        self.major = major

    def pack(self, value: Any) -> bytes:
        """Pack a value with the type.

        Parameters
        ----------
        value : object

        Returns
        -------
        packed : bytes
        """
        return self._kattype.pack(value, major=self.major)

    def unpack(self, value: Optional[bytes]) -> Any:
        """Unpack an argument with the type.

        Parameters
        ----------
        value : bytes or None

        Returns
        -------
        value : object

        Raises
        ------
        FailReply
            ``Error in parameter <position> (<name>): <reason>``.
        """
        try:
            return self._kattype.unpack(value, self.major)
        except ValueError as message:
            raise FailReply("Error in parameter %s (%s): %s"
                            % (self.position, self.name, message)) from None


def _check_multiple_last(types: Sequence[KatcpType]) -> None:
    for type_ in types[:-1]:
        if type_._multiple:
            raise TypeError("Only the last parameter type can accept multiple arguments.")


def _arg_names(handler: Callable[..., Any]) -> List[str]:
    names = getattr(handler, "_orig_argnames", None)
    if names is None:
        names = inspect.getfullargspec(handler).args
    return list(names)


def request(*types: KatcpType, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a request handler so it receives parsed arguments.

    The handler ``handler(self, req, arg1, arg2, ...)`` becomes a standard
    ``handler(self, req, msg)``; the message arguments are unpacked with
    ``types``. katcp 0.5 handlers, whose first parameter is ``sock``, work
    the same way.

    Parameters
    ----------
    *types : KatcpType
        The argument types in order; only the last may have
        ``multiple=True``.
    include_msg : bool, optional (keyword)
        Also pass the message: ``handler(self, req, msg, arg1, ...)``.
    major : int, optional (keyword)
        KATCP major version (default 5).
    has_req : bool or None, optional (keyword)
        Whether the handler takes a request context first (default True);
        None decides by the name of that parameter (``req`` or ``sock``), as
        katcp 0.5 did.

    Returns
    -------
    decorator : callable

    Raises
    ------
    TypeError
        For unknown keywords or a ``multiple`` type that is not last.

    Notes
    -----
    At call time, too many arguments raise
    ``FailReply("Too many parameters given.")`` and a bad or missing one
    ``FailReply("Error in parameter 1 (name): ...")``.
    """
    include_msg = options.pop("include_msg", False)
    has_req = options.pop("has_req", True)
    major = options.pop("major", DEFAULT_KATCP_MAJOR)
    options.pop("_check_req", None)
    if options:
        raise TypeError("does not take keyword argument(s) %r." % list(options.keys()))
    _check_multiple_last(types)

    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        all_names = _arg_names(handler)
        takes_req = has_req
        if takes_req is None:
            takes_req = len(all_names) > 1 and all_names[1] in _REQ_PARAMETER_NAMES
        skip = 1 + int(bool(takes_req)) + int(bool(include_msg))
        argnames = all_names[skip:]
        if takes_req:
            def raw_handler(self: Any, req: Any, msg: Message) -> Any:
                new_args = unpack_types(types, msg.arguments, argnames, major)
                if include_msg:
                    return handler(self, req, msg, *new_args)
                return handler(self, req, *new_args)
        else:
            def raw_handler(self: Any, msg: Message) -> Any:  # type: ignore[misc]
                new_args = unpack_types(types, msg.arguments, argnames, major)
                if include_msg:
                    return handler(self, msg, *new_args)
                return handler(self, *new_args)
        update_wrapper(raw_handler, handler)
        raw_handler._request_decorated = True  # type: ignore[attr-defined]
        return raw_handler

    return decorator


inform = partial(request, has_req=None)
inform.__doc__ = """Decorate an inform handler so it receives parsed arguments.

Like :func:`request` for handlers ``handler(self, msg)``, which become
``handler(self, arg1, ...)`` (or ``handler(self, msg, arg1, ...)`` with
``include_msg=True``). A handler whose first parameter is named ``req`` or
``sock`` (a server's inform handler in katcp 0.5 form) keeps it:
``handler(self, sock, msg)`` becomes ``handler(self, sock, arg1, ...)``.
"""
unpack_message = partial(request, has_req=False)
unpack_message.__doc__ = """Decorate a function of a message so it receives parsed arguments.

Like :func:`inform`, but never takes a request context first.
"""


def return_reply(*types: KatcpType, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a request handler so its returned tuple becomes the reply.

    The handler returns ``("ok", v1, v2, ...)`` (values packed with
    ``types``) or ``("fail", "reason")``; the decorator returns the reply
    :class:`Message`.

    Parameters
    ----------
    *types : KatcpType
        Types of the values after ``ok``.
    major : int, optional (keyword)
        KATCP major version (default 5).

    Returns
    -------
    decorator : callable

    Raises
    ------
    TypeError
        For unknown keywords or a ``multiple`` type that is not last.
    ValueError
        When decorating a function whose name does not start with
        ``request_``.
    """
    major = options.pop("major", DEFAULT_KATCP_MAJOR)
    if options:
        raise TypeError("return_reply does not take keyword argument(s) %r."
                        % list(options.keys()))
    _check_multiple_last(types)

    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        if not handler.__name__.startswith("request_"):
            raise ValueError("This decorator can only be used on a katcp request handler "
                             "(method name should start with 'request_').")
        msgname = convert_method_name("request_", handler.__name__)

        @wraps(handler)
        def raw_handler(self: Any, *args: Any) -> Any:
            reply_args = handler(self, *args)
            if isinstance(reply_args, concurrent.futures.Future):
                return async_make_reply(msgname, types, reply_args, major)
            return make_reply(msgname, types, reply_args, major)

        if not getattr(handler, "_request_decorated", False):
            raw_handler._orig_argnames = _arg_names(handler)  # type: ignore[attr-defined]
        return raw_handler

    return decorator


def async_make_reply(msgname: str, types: Sequence[KatcpType],
                     arguments_future: "concurrent.futures.Future[Any]",
                     major: int) -> "concurrent.futures.Future[Message]":
    """A future of the reply built from a future of its arguments.

    katcp 0.9.3's tornado coroutine, here with :class:`concurrent.futures.Future`.

    Parameters
    ----------
    msgname : str
        The reply name.
    types : sequence of KatcpType
        Types of the values after ``ok``.
    arguments_future : concurrent.futures.Future
        Resolves with the arguments for :func:`make_reply`.
    major : int
        KATCP major version.

    Returns
    -------
    reply_future : concurrent.futures.Future
        Resolves with the reply :class:`Message`, or fails with the error of
        ``arguments_future`` or of :func:`make_reply`.
    """
    result: "concurrent.futures.Future[Message]" = concurrent.futures.Future()

    def done(f: "concurrent.futures.Future[Any]") -> None:
        try:
            result.set_result(make_reply(msgname, types, f.result(), major))
        except BaseException as exc:  # handed to the caller through the future
            result.set_exception(exc)

    arguments_future.add_done_callback(done)
    return result


def send_reply(*types: KatcpType, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a callback so its returned tuple is packed and sent as a reply.

    The callback returns ``(req, "ok", v1, ...)`` or ``(req, "fail",
    "reason")``; the reply is built from ``req.msg.name`` and sent with
    ``req.reply_with_message``.

    Parameters
    ----------
    *types : KatcpType
        Types of the values after ``ok``.
    major : int, optional (keyword)
        KATCP major version (default 5).

    Returns
    -------
    decorator : callable

    Raises
    ------
    TypeError
        For unknown keywords.
    """
    major = options.pop("major", DEFAULT_KATCP_MAJOR)
    if options:
        raise TypeError("send_reply does not take keyword argument(s) %r."
                        % list(options.keys()))

    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(handler)
        def raw_handler(self: Any, *args: Any) -> None:
            reply_args = handler(self, *args)
            req = reply_args[0]
            req.reply_with_message(make_reply(req.msg.name, types, reply_args[1:], major))
        return raw_handler

    return decorator


def make_reply(msgname: str, types: Sequence[KatcpType], arguments: Sequence[Any],
               major: int) -> Message:
    """Build a reply message from ``("ok", ...)`` or ``("fail", reason)``.

    Parameters
    ----------
    msgname : str
        The reply name.
    types : sequence of KatcpType
        Types of the values after ``ok``.
    arguments : sequence
        The status followed by the values.
    major : int
        KATCP major version.

    Returns
    -------
    reply : Message

    Raises
    ------
    ValueError
        If the status is neither ``ok`` nor ``fail``, or values do not pack.
    """
    status = to_str(arguments[0])
    if status == _FAIL:
        return Message.reply(msgname, *pack_types((Str(), Str()), arguments, major))
    if status == _OK:
        return Message.reply(msgname, *pack_types((Str(),) + tuple(types), arguments, major))
    raise ValueError("First returned value must be 'ok' or 'fail'.")


def concurrent_reply(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a handler as safe to run concurrently (kept for compatibility).

    Parameters
    ----------
    handler : callable

    Returns
    -------
    handler : callable
        The same function, with ``_concurrent_reply = True``.
    """
    handler._concurrent_reply = True  # type: ignore[attr-defined]
    return handler


def minimum_katcp_version(major: int, minor: int = 0) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Leave a server handler out when ``PROTOCOL_INFO`` is older than given.

    Parameters
    ----------
    major : int
    minor : int, optional

    Returns
    -------
    decorator : callable
        Sets ``handler._minimum_katcp_version = (major, minor)``.
    """
    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        handler._minimum_katcp_version = (major, minor)  # type: ignore[attr-defined]
        return handler
    return decorator


def has_katcp_protocol_flags(protocol_flags: Iterable[bytes]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Leave a server handler out unless ``PROTOCOL_INFO`` has all these flags.

    Parameters
    ----------
    protocol_flags : list of bytes
        E.g. ``[ProtocolFlags.MESSAGE_IDS]``.

    Returns
    -------
    decorator : callable
        Sets ``handler._has_katcp_protocol_flags``.
    """
    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        handler._has_katcp_protocol_flags = protocol_flags  # type: ignore[attr-defined]
        return handler
    return decorator


def request_timeout_hint(timeout_hint: Optional[float]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach a client timeout hint (seconds) to a request handler.

    Parameters
    ----------
    timeout_hint : float or None
        Seconds the request may reasonably take; None for no hint.

    Returns
    -------
    decorator : callable
        Sets ``handler.request_timeout_hint``; served by
        ``?request-timeout-hint`` when the server has flag ``T``.
    """
    if timeout_hint is not None:
        timeout_hint = float(timeout_hint)

    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        handler.request_timeout_hint = timeout_hint  # type: ignore[attr-defined]
        return handler
    return decorator


def unpack_types(types: Sequence[KatcpType], args: Sequence[Optional[bytes]],
                 argnames: Sequence[str], major: int) -> List[Any]:
    """Unpack message arguments with a list of types.

    Parameters
    ----------
    types : sequence of KatcpType
    args : sequence of bytes
    argnames : sequence of str
        Names used in error messages.
    major : int

    Returns
    -------
    values : list

    Raises
    ------
    FailReply
        ``Too many parameters given.`` or ``Error in parameter ...``.
    """
    multiple = bool(types) and types[-1]._multiple
    if len(types) < len(args) and not multiple:
        raise FailReply("Too many parameters given.")
    params = []
    name = ""
    kattype: Optional[KatcpType] = None
    for i, kattype in enumerate(types):
        name = argnames[i] if i < len(argnames) else ""
        params.append(Parameter(i + 1, name, kattype, major))
    if multiple and kattype is not None:
        for i in range(len(types), len(args)):
            params.append(Parameter(i + 1, name, kattype, major))
    return [param.unpack(arg) for param, arg in itertools.zip_longest(params, args)]


def pack_types(types: Sequence[KatcpType], args: Sequence[Any], major: int) -> List[bytes]:
    """Pack values with a list of types.

    Parameters
    ----------
    types : sequence of KatcpType
    args : sequence of objects
    major : int

    Returns
    -------
    packed : list of bytes

    Raises
    ------
    ValueError
        ``Too many arguments to pack.`` or a type's own error.
    """
    multiple = bool(types) and types[-1]._multiple
    if len(types) < len(args) and not multiple:
        raise ValueError("Too many arguments to pack.")
    if len(args) < len(types):
        packed = [ktype.pack(arg, major=major) for ktype, arg in itertools.zip_longest(types, args)]
    else:
        packed = [ktype.pack(arg, major=major) for ktype, arg in zip(types, args)]
    if multiple and len(args) > len(types):
        last = types[-1]
        packed.extend(last.pack(arg, major=major) for arg in args[len(types):])
    return packed
