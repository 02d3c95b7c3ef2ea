"""sockproto: socket_protocol's pure_json_protocol and friends, with a TCP transport.

``import sockproto as socket_protocol`` gives a script written for
socket_protocol every documented name: the ``SID_*``, ``DID_*``,
``STATUS_*`` and ``AUTH_STATE_*`` constants, :class:`data_storage`,
:class:`pure_json_protocol`, :class:`struct_json_protocol` and the
``add_service`` errors. The comm instances live in :mod:`sockproto.tcp`
(TCP client and server) and :mod:`sockproto.memory` (an in-memory pair).
"""

from .protocol import *  # noqa: F401,F403
from .protocol import __all__ as _protocol_names
from .tcp import tcp_client_stp, tcp_server_stp
from .memory import comm_pair

__all__ = list(_protocol_names) + ["tcp_client_stp", "tcp_server_stp", "comm_pair"]
