"""The requests a connection has sent and awaits responses to: ids, timeouts, resending."""

import collections
import itertools
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ..netutil import TimerHandle, call_later_shared
from ._codec import MessageManager


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
    :func:`time.monotonic` deadline, or None for no timeout); a file pull made
    with a progress callback also has ``progress``.
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
        ``on_expired(request_id, request)`` when a request's timeout passes,
        on the shared timer thread of :func:`~protocompat.netutil.call_later_shared`
        (the application owns the loop, so it has no timers); the request is
        forgotten. A response cancels the timer.

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
        self._timers: Dict[str, TimerHandle] = {}

    def add(self, requested_value: str, callback: Optional[Callable[..., Any]],
            request_args: Iterable[Any], request_kwargs: Dict[str, Any],
            callback_args: Iterable[Any], callback_kwargs: Dict[str, Any],
            timeout: Optional[float], progress: Optional[Callable[[int, int], Any]] = None
            ) -> Tuple[str, bytes]:
        """Register a new request; return its id and frame (TypeError if it is not JSON).

        ``progress`` is kept as the request's ``progress`` field (file requests only).
        """
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
            if progress is not None:
                self.queue[request_id]["progress"] = progress
        if timeout is not None:
            # The timer holds this object weakly: a dropped connection's requests need no expiry.
            timer = call_later_shared(timeout, _expire, weakref.ref(self), request_id)
            with self._lock:
                if request_id in self.queue:
                    self._timers[request_id] = timer
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
            timer = self._timers.pop(request_id, None) if self._timers else None
        if timer is not None:
            timer.cancel()
        return request

    def expire(self, request_id: str) -> None:
        """Forget request ``request_id`` if its timeout has passed, and report it."""
        with self._lock:
            self._timers.pop(request_id, None)
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


def _expire(requests: "weakref.ref[PendingRequests]", request_id: str) -> None:
    """A request's timer has fired: expire it, if its connection still exists."""
    pending = requests()
    if pending is not None:
        pending.expire(request_id)
