"""katcp 0.9.3's tornado-only test helpers, importable so that suites load.

A suite that imports them at module level still loads and runs its threaded
tests; the tests that use these helpers skip, saying why.
"""

import unittest
from typing import Any

from ._testutils_server import DeviceTestServer
from ._testutils_mock import WaitingMock

__all__ = ["TORNADO_ONLY_REASON", "TimewarpAsyncTestCase", "AsyncDeviceTestServer",
           "AsyncWaitingMock"]

#: Why the tests that use these helpers skip.
TORNADO_ONLY_REASON = ("needs katcp 0.9.3's tornado ioloop; katcp_compat is threaded "
                       "and has no tornado")


@unittest.skip(TORNADO_ONLY_REASON)
class TimewarpAsyncTestCase(unittest.TestCase):
    """katcp's tornado ``AsyncTestCase`` with a mock clock.

    Every test of a subclass skips with :data:`TORNADO_ONLY_REASON`.
    """


class AsyncDeviceTestServer(DeviceTestServer):
    """katcp's test server for tornado coroutine handlers.

    Raises
    ------
    unittest.SkipTest
        On construction, with :data:`TORNADO_ONLY_REASON`, so a test that
        builds one (in ``setUp`` or in its body) skips.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise unittest.SkipTest("AsyncDeviceTestServer " + TORNADO_ONLY_REASON)


class AsyncWaitingMock(WaitingMock):
    """katcp's mock whose waits are tornado coroutines.

    Raises
    ------
    unittest.SkipTest
        On construction, with :data:`TORNADO_ONLY_REASON`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise unittest.SkipTest("AsyncWaitingMock " + TORNADO_ONLY_REASON)
