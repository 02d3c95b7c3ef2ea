"""Utility functions and classes shared by SAMP hubs and clients.

Outgoing XML-RPC goes through :class:`SAMPXXEServerProxy`, whose transport
parses responses with the hardened parser of :mod:`samp_compat.xmlrpc` and
puts a socket timeout on every request.
"""
import inspect
import logging
import threading
import traceback
import urllib.request
import xmlrpc.client
from typing import Any, Callable, Dict, List, Optional

from ._conf import conf
from ._transport import safe_transport
from .constants import SAMP_STATUS_ERROR, SAMP_STATUS_OK
from .errors import SAMPProxyError, SAMPProxyTimeoutError
from .xmlrpc import SafeTransport
from .xmlrpc import safe_xmlrpc_loads  # noqa: F401 - part of this module's interface

__all__ = ["SAMPMsgReplierWrapper", "SAMPXXEServerProxy", "safe_xmlrpc_loads"]

log = logging.getLogger("samp_compat.utils")

#: Socket timeout (seconds) of an outgoing XML-RPC request unless told otherwise.
DEFAULT_TIMEOUT = 30.0
#: Extra seconds granted to ``callAndWait`` beyond the SAMP timeout it carries.
CALL_AND_WAIT_MARGIN = 5.0
_PROBE_URL = "http://google.com"
_PROBE_TIMEOUT = 1.0
_NOTIFICATION_ARGS = 5


def get_safe_parser(use_datetime: bool = False, use_builtin_types: bool = False) -> Any:
    """Return a hardened XML-RPC parser and its unmarshaller.

    Parameters
    ----------
    use_datetime : bool, optional
        Return ``dateTime`` values as :class:`datetime.datetime`.
    use_builtin_types : bool, optional
        Return ``dateTime`` and ``base64`` values as builtin types.

    Returns
    -------
    parser, unmarshaller : tuple
        Feed the parser, close it, then read ``unmarshaller.close()``;
        DTDs, entities and external references raise an error.
    """
    return SafeTransport(use_datetime, use_builtin_types).getparser()


def internet_on() -> bool:
    """Tell whether the internet can be used.

    Returns
    -------
    online : bool
        ``False`` unless ``samp_compat.conf.use_internet`` is set and
        ``http://google.com`` answers within one second.
    """
    if not conf.use_internet:
        return False
    try:
        with urllib.request.urlopen(_PROBE_URL, timeout=_PROBE_TIMEOUT):
            return True
    except Exception:
        return False


def get_num_args(f: Callable) -> int:
    """Count the positional arguments of a function or method.

    Parameters
    ----------
    f : function or method
        The callable; for a bound method ``self`` is not counted.

    Returns
    -------
    n : int
        Number of positional arguments.

    Raises
    ------
    TypeError
        ``f`` is neither a function nor a method.
    """
    if inspect.ismethod(f):
        return f.__func__.__code__.co_argcount - 1
    if inspect.isfunction(f):
        return f.__code__.co_argcount
    raise TypeError("f should be a function or a method, got %r" % (type(f).__name__,))


def getattr_recursive(variable: Any, attribute: str) -> Any:
    """Resolve a dotted attribute path such as ``"samp.hub.ping"``.

    Parameters
    ----------
    variable : object
        Where to start.
    attribute : str
        Dotted attribute name.

    Returns
    -------
    value : object
        The attribute found.
    """
    for part in attribute.split("."):
        variable = getattr(variable, part)
    return variable


def _set_timeout(proxy: xmlrpc.client.ServerProxy, timeout: Optional[float]) -> None:
    """Change the socket timeout of ``proxy`` (also on an open connection)."""
    transport = proxy("transport")
    if not hasattr(transport, "_timeout"):
        return
    transport._timeout = timeout
    conn = getattr(transport, "_connection", (None, None))[1]
    if conn is not None:
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)


class SAMPXXEServerProxy(xmlrpc.client.ServerProxy):
    """An XML-RPC server proxy whose responses are parsed safely.

    Parameters
    ----------
    uri : str
        URL of the XML-RPC server (``http`` or ``https``).
    *args, **kwargs
        As for :class:`xmlrpc.client.ServerProxy`. When no ``transport`` is
        given, a safe one is built; ``timeout`` (seconds, default
        :data:`DEFAULT_TIMEOUT`) sets its socket timeout and ``context``
        (an :class:`ssl.SSLContext`) is used for ``https``.
    """

    def __init__(self, uri: str, *args: Any, **kwargs: Any) -> None:
        timeout = kwargs.pop("timeout", DEFAULT_TIMEOUT)
        context = kwargs.pop("context", None)
        if "transport" not in kwargs and not (len(args) >= 1 and args[0] is not None):
            kwargs["transport"] = safe_transport(
                uri, timeout, use_datetime=kwargs.get("use_datetime", False),
                use_builtin_types=kwargs.get("use_builtin_types", False), context=context)
        super().__init__(uri, *args, **kwargs)


class _ServerProxyPoolMethod:
    """A (possibly dotted) remote method name bound to a pool."""

    def __init__(self, pool: "ServerProxyPool", name: str) -> None:
        self._pool = pool
        self._name = name

    def __getattr__(self, name: str) -> "_ServerProxyPoolMethod":
        return _ServerProxyPoolMethod(self._pool, "%s.%s" % (self._name, name))

    def __call__(self, *args: Any) -> Any:
        return self._pool._call(self._name, args)


class ServerProxyPool:
    """A thread-safe pool of XML-RPC server proxies to one server.

    Each call takes a proxy from the pool (waiting if all are busy), so up to
    ``size`` calls run concurrently, each on its own kept-alive connection.
    Proxies are made when a call finds none idle, up to ``size``. A call that
    fails other than with a fault closes its connection (the next call on
    that proxy opens a fresh one).

    Parameters
    ----------
    size : int
        Number of proxies.
    proxy_class : type
        Class of the proxies, e.g. :class:`SAMPXXEServerProxy`.
    *args, **keywords
        Passed to ``proxy_class``.
    """

    def __init__(self, size: int, proxy_class: type, *args: Any, **keywords: Any) -> None:
        self._size = size
        self._make = lambda: proxy_class(*args, **keywords)
        self._idle: List[Any] = []
        self._busy: List[Any] = []
        self._cond = threading.Condition(threading.Lock())
        self._aborted = False

    def __getattr__(self, name: str) -> _ServerProxyPoolMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        return _ServerProxyPoolMethod(self, name)

    def _call(self, name: str, args: tuple, timeout: Any = "default") -> Any:
        """Call remote method ``name``; faults become :class:`SAMPProxyError`."""
        with self._cond:
            while not self._idle and len(self._busy) >= self._size and not self._aborted:
                self._cond.wait()
            if self._aborted:
                raise ConnectionAbortedError("proxy pool aborted")
            proxy = self._idle.pop() if self._idle else self._make()
            self._busy.append(proxy)
        try:
            if timeout != "default":
                _set_timeout(proxy, timeout)
            try:
                return getattr_recursive(proxy, name)(*args)
            except xmlrpc.client.Fault as exc:
                if isinstance(exc, SAMPProxyError):
                    raise
                raise SAMPProxyError(exc.faultCode, exc.faultString) from None
            except Exception:
                # a failed connection is not reused half-read
                proxy("close")()
                raise
            finally:
                if timeout != "default":
                    _set_timeout(proxy, DEFAULT_TIMEOUT)
        finally:
            with self._cond:
                self._busy.remove(proxy)
                self._idle.append(proxy)
                self._cond.notify()

    def _abort(self) -> None:
        """Break the calls in progress from any thread; they raise ``ConnectionAbortedError``.

        Only for a pool that is being given up: it refuses every later call.
        """
        with self._cond:
            self._aborted = True
            busy = list(self._busy)
            self._cond.notify_all()
        for proxy in busy:
            transport = proxy("transport")
            if hasattr(transport, "abort"):
                transport.abort()

    def shutdown(self) -> None:
        """Close the connections of the idle proxies (a later call opens a fresh one)."""
        with self._cond:
            for proxy in self._idle:
                proxy("close")()


def _reply_status(result: Any) -> Dict[str, Any]:
    return {"samp.status": SAMP_STATUS_OK, "samp.result": result}


class SAMPMsgReplierWrapper:
    """Decorator that replies to a SAMP call with what the function returns.

    The decorated function is bound with ``bind_receive_call`` /
    ``bind_receive_message``. For a call, a non-empty return value is sent as
    the ``samp.result`` of a ``samp.ok`` response and an exception as a
    ``samp.error`` response carrying the traceback. Notifications just call
    the function.

    Parameters
    ----------
    cli : SAMPIntegratedClient or SAMPClient
        The client that receives the calls and sends the replies.
    """

    def __init__(self, cli: Any) -> None:
        self.cli = cli

    def __call__(self, f: Callable) -> Callable:
        """Wrap ``f``.

        Parameters
        ----------
        f : callable
            A SAMP binding function (5 arguments for notifications, 6 for calls).

        Returns
        -------
        wrapped : callable
            The function to bind.
        """

        def wrapped_f(*args: Any) -> None:
            if _binding_arity(f) == _NOTIFICATION_ARGS or args[2] is None:
                f(*args)
                return
            try:
                result = f(*args)
            except Exception:
                response = {
                    "samp.status": SAMP_STATUS_ERROR,
                    "samp.result": {"txt": traceback.format_exc()},
                    "samp.error": {"samp.errortxt": traceback.format_exc(limit=0).strip()},
                }
            else:
                if not result:
                    return
                response = _reply_status(result)
            self.cli.hub.reply(self.cli.get_private_key(), args[2], response)

        wrapped_f.__name__ = getattr(f, "__name__", "wrapped_f")
        wrapped_f.__doc__ = f.__doc__
        wrapped_f.__wrapped__ = f  # type: ignore[attr-defined]
        # the client reads this to call the wrapper with 5 or 6 arguments
        wrapped_f._samp_nargs = _binding_arity(f)  # type: ignore[attr-defined]
        return wrapped_f


def _binding_arity(f: Callable) -> int:
    """Number of positional arguments a binding function takes."""
    declared = getattr(f, "_samp_nargs", None)
    if declared is not None:
        return declared
    try:
        return get_num_args(f)
    except TypeError:
        params = inspect.signature(f).parameters.values()
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return sum(1 for p in params if p.kind in kinds)


def _timeout_fault(exc: SAMPProxyError) -> SAMPProxyError:
    """Turn a hub timeout fault into :class:`SAMPProxyTimeoutError`."""
    if exc.faultCode == 1 and not isinstance(exc, SAMPProxyTimeoutError):
        return SAMPProxyTimeoutError(exc.faultCode, exc.faultString)
    return exc
