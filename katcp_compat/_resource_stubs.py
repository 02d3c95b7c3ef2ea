"""Placeholders for katcp 0.9's tornado-based resource clients.

``KATCPClientResource`` and ``KATCPClientResourceContainer`` are built on
tornado coroutines and have no threaded counterpart here. The names exist so
that ``from katcp import *`` style imports keep working; using them raises.
"""

from typing import Any

_MESSAGE = ("%s is part of katcp's tornado-based resource layer, which katcp_compat does not "
            "provide; use CallbackClient / BlockingClient instead")


class KATCPClientResource:
    """Not provided: see the module notes.

    Raises
    ------
    NotImplementedError
        On construction.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_MESSAGE % type(self).__name__)


class KATCPClientResourceContainer:
    """Not provided: see the module notes.

    Raises
    ------
    NotImplementedError
        On construction.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_MESSAGE % type(self).__name__)
