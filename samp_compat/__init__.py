"""XXE-safe re-implementation of ``astropy.samp`` / ``pyvo.samp``.

``import samp_compat as samp`` can replace ``astropy.samp``, ``astropy.vo.samp``
or ``pyvo.samp``: the public names, signatures and wire behaviour are the same.
"""
from ._conf import Conf, conf  # noqa: F401

from .constants import *  # noqa: F401,F403
from .errors import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
from .hub_proxy import *  # noqa: F401,F403
from .client import *  # noqa: F401,F403
from .integrated_client import *  # noqa: F401,F403
from .hub import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from . import (  # noqa: F401 - submodules of the original are attributes too
    lockfile_helpers, standard_profile, vo_helpers, web_profile)
