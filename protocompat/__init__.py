"""protocompat: threaded, drop-in re-implementations of katcp-python, astropy.samp,
clever-show's ``lib.messaging`` and socket_protocol.

This package holds what the protocol packages share (:mod:`protocompat.netutil`)
and the distribution's version.
"""

__version__ = "0.2.0.dev0"

__all__ = ["__version__"]
