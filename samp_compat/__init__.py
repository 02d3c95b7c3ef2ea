"""XXE-safe re-implementation of ``astropy.samp`` / ``pyvo.samp``.

``import samp_compat as samp`` can replace ``astropy.samp``, ``astropy.vo.samp``
or ``pyvo.samp``: the public names, signatures and wire behaviour are the same.
"""
import contextlib
from typing import Any, Dict, Iterator, Optional


class Conf:
    """Configuration parameters for :mod:`samp_compat`.

    Attributes
    ----------
    use_internet : bool
        Whether hubs and clients may probe the internet to choose a public
        host name for their servers (default ``False``: always 127.0.0.1).
    n_retries : int
        How many times a hub retries a delivery that fails with a fault.
    """

    _defaults: Dict[str, Any] = {"use_internet": False, "n_retries": 10}

    def __init__(self) -> None:
        self.reset()

    def reset(self, attr: Optional[str] = None) -> None:
        """Restore one setting (or all of them) to the default.

        Parameters
        ----------
        attr : str, optional
            Name of the setting; all settings when omitted.
        """
        names = [attr] if attr is not None else list(self._defaults)
        for name in names:
            if name not in self._defaults:
                raise AttributeError("No configuration item %r" % (name,))
            object.__setattr__(self, name, self._defaults[name])

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._defaults:
            raise AttributeError("No configuration item %r" % (name,))
        object.__setattr__(self, name, value)

    @contextlib.contextmanager
    def set_temp(self, attr: str, value: Any) -> Iterator[None]:
        """Temporarily change a setting inside a ``with`` block.

        Parameters
        ----------
        attr : str
            Name of the setting.
        value : object
            Value used inside the block.
        """
        old = getattr(self, attr)
        setattr(self, attr, value)
        try:
            yield
        finally:
            setattr(self, attr, old)


conf = Conf()

from .constants import *  # noqa: E402,F401,F403
from .errors import *  # noqa: E402,F401,F403
from .utils import *  # noqa: E402,F401,F403
from .hub_proxy import *  # noqa: E402,F401,F403
from .client import *  # noqa: E402,F401,F403
from .integrated_client import *  # noqa: E402,F401,F403
from .hub import *  # noqa: E402,F401,F403
from .helpers import *  # noqa: E402,F401,F403
from . import (  # noqa: E402,F401 - submodules of the original are attributes too
    lockfile_helpers, standard_profile, vo_helpers, web_profile)
