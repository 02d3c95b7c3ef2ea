"""WaitingMock (part of :mod:`katcp_compat.testutils`)."""

import threading
from typing import Any
from unittest import mock

__all__ = ["WaitingMock"]


class WaitingMock(mock.Mock):
    """A :class:`unittest.mock.Mock` that can wait until it has been called.

    Use :meth:`assert_wait_call_count`. Calls are counted (and waiters
    woken) before any ``side_effect`` runs, so a blocking side effect does
    not hold a waiter back.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__dict__["_calls_cond"] = threading.Condition()

    def _increment_mock_call(self, *args: Any, **kwargs: Any) -> None:
        cond = self.__dict__.get("_calls_cond")
        if cond is None:
            super()._increment_mock_call(*args, **kwargs)
            return
        with cond:
            super()._increment_mock_call(*args, **kwargs)
            cond.notify_all()

    def assert_wait_call_count(self, count: int, timeout: float = 1.0) -> bool:
        """Wait until the mock has been called at least ``count`` times.

        Parameters
        ----------
        count : int
            Calls to wait for.
        timeout : float
            Seconds to wait.

        Returns
        -------
        reached : bool
            True.

        Raises
        ------
        AssertionError
            If the count is not reached in time.
        """
        with self.__dict__["_calls_cond"]:
            reached = self.__dict__["_calls_cond"].wait_for(
                lambda: self.call_count >= count, timeout)
        assert reached, "called %d times, expected at least %d" % (self.call_count, count)
        return True
