"""What katcp 0.9's users call on a server's or client's ``ioloop``, on a selector loop."""

from typing import Any, Callable

from protocompat.netutil import SelectorLoop, TimerHandle

__all__ = ["IOLoopStub"]


class IOLoopStub:
    """Stands in for katcp 0.9's tornado ioloop of a server or client.

    Everything runs on the owner's I/O thread (its
    :class:`~protocompat.netutil.SelectorLoop`); every method is safe from
    any thread. It is also a timer source for
    :class:`~katcp_compat.sampling.SampleStrategy` (``reactor=``) and for the
    future helpers of :mod:`katcp_compat.core` (``ioloop=``).

    Parameters
    ----------
    loop : SelectorLoop
        The owner's loop.
    """

    __slots__ = ("_loop",)

    def __init__(self, loop: SelectorLoop) -> None:
        self._loop = loop

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``callback(*args, **kwargs)`` soon on the I/O thread."""
        if kwargs:
            self._loop.call_soon(lambda: callback(*args, **kwargs))
        else:
            self._loop.call_soon(callback, *args)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the I/O thread after ``delay`` seconds.

        Returns
        -------
        handle : TimerHandle
            Pass it to :meth:`remove_timeout` (or call its ``cancel()``).
        """
        return self._loop.call_later(delay, callback, *args)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the I/O thread at ``when`` on the :meth:`time` clock.

        Returns
        -------
        handle : TimerHandle
        """
        return self._loop.call_at(when, callback, *args)

    @staticmethod
    def remove_timeout(handle: TimerHandle) -> None:
        """Cancel a call made with :meth:`call_later` or :meth:`call_at`."""
        handle.cancel()

    def time(self) -> float:
        """The loop's clock (:func:`time.monotonic`)."""
        return self._loop.time()
