"""The requests a connection has sent and awaits responses to: ids, timeouts, resending."""

import collections
import itertools
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ._codec import MessageManager
from ._expiry import RequestExpiry

_expiry = RequestExpiry()


class Namespace:
    """An attribute bag that also supports ``ns["name"]`` access.

    Parameters
    ----------
    **kwargs
        Initial attributes.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.__dict__[key] = value

    def __getattr__(self, name: str) -> Any:  # only for missing fields (fields are dynamic)
        raise AttributeError("%s has no field %r" % (type(self).__name__, name))

    def __repr__(self) -> str:
        fields = ", ".join("%s=%r" % item for item in self.__dict__.items())
        return "%s(%s)" % (type(self).__name__, fields)


class PendingRequest(Namespace):
    """A request sent with :meth:`ConnectionManager.get_response` and not yet answered.

    Fields: ``requested_value, value, callback, callback_args, callback_kwargs,
    request_args, request_kwargs, resend`` and ``expires_on`` (a
    :func:`time.monotonic` deadline, or None for no timeout).
    """


class _RequestFrame(bytes):
    """The bytes of a request frame, marked with the request's id (the request keeps no frame)."""

    request_id: str


def _request_frame(requested_value: str, request_id: str, args: Iterable[Any],
                   kwargs: Dict[str, Any]) -> _RequestFrame:
    frame = _RequestFrame(MessageManager.create_request(requested_value, request_id, args, kwargs))
    frame.request_id = request_id
    return frame


class PendingRequests:
    """The unanswered requests of one connection, by id; safe from any thread.

    Parameters
    ----------
    on_expired : callable
        ``on_expired(request_id, request)`` when a request's timeout passes
        (from the timer thread); the request is forgotten.

    Attributes
    ----------
    queue : collections.OrderedDict
        Request id to :class:`PendingRequest`, oldest first.
    """

    def __init__(self, on_expired: Callable[[str, PendingRequest], Any]) -> None:
        self.queue: "collections.OrderedDict[Any, PendingRequest]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._on_expired = on_expired

    def add(self, requested_value: str, callback: Optional[Callable[..., Any]],
            request_args: Iterable[Any], request_kwargs: Dict[str, Any],
            callback_args: Iterable[Any], callback_kwargs: Dict[str, Any],
            timeout: Optional[float]) -> Tuple[str, bytes]:
        """Register a new request; return its id and frame (TypeError if it is not JSON)."""
        frame_args = tuple(request_args)
        with self._lock:
            request_id = "%04d" % next(self._ids)
        # Encoded first: arguments that are not JSON raise here, leaving nothing pending.
        frame = _request_frame(requested_value, request_id, frame_args, request_kwargs)
        expires_on = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self.queue[request_id] = PendingRequest(
                requested_value=requested_value, value=None, callback=callback,
                callback_args=callback_args, callback_kwargs=callback_kwargs,
                request_args=frame_args, request_kwargs=request_kwargs, resend=True,
                expires_on=expires_on)
        if expires_on is not None:
            _expiry.add(expires_on, self._expire, request_id)
        return request_id, frame

    def get(self, request_id: Any) -> Optional[PendingRequest]:
        """The pending request ``request_id`` (a hashable value), or None."""
        with self._lock:
            return self.queue.get(request_id)

    def pop(self, request_id: Any, requested_value: Any) -> Optional[PendingRequest]:
        """Forget and return the request a response answers, or None if there is none."""
        if not isinstance(request_id, str):
            return None
        with self._lock:
            request = self.queue.get(request_id)
            if request is None or request.requested_value != requested_value:
                return None
            del self.queue[request_id]
        return request

    def _expire(self, request_id: str) -> None:
        with self._lock:
            request = self.queue.get(request_id)
            if request is None or request.expires_on is None or request.expires_on > time.monotonic():
                return
            del self.queue[request_id]
        self._on_expired(request_id, request)

    def frames_to_resend(self, queued: Iterable[Any]) -> List[bytes]:
        """Frames of the requests to send again once, but not of those whose frame is ``queued``."""
        waiting = {frame.request_id for frame in queued if isinstance(frame, _RequestFrame)}
        frames: List[bytes] = []
        with self._lock:
            for request_id, request in self.queue.items():
                if request_id in waiting:
                    continue  # its first sending is still queued
                if request.resend:
                    frames.append(_request_frame(request.requested_value, request_id,
                                                 request.request_args, request.request_kwargs))
                    request["resend"] = False
        return frames
