"""Fixtures: protocol pairs over the in-memory comm pair and over real TCP."""
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from protocompat.netutil import LOOPBACK
from sockproto import pure_json_protocol, struct_json_protocol
from sockproto.memory import comm_pair
from sockproto.tcp import tcp_client_stp, tcp_server_stp


from sockproto_testing import WAIT


@pytest.fixture(params=["memory", "tcp"])
def transport(request: Any) -> str:
    return request.param


@pytest.fixture(params=[pure_json_protocol, struct_json_protocol], ids=["pure", "struct"])
def protocol_class(request: Any) -> type:
    return request.param


@pytest.fixture
def make_comms(transport: str) -> Callable[..., Tuple[Any, Any]]:
    """Factory of connected (client comm, server comm) for the transport; closed afterwards."""
    made: List[Any] = []

    def make(**tcp_options: Any) -> Tuple[Any, Any]:
        if transport == "memory":
            client, server = comm_pair()
            made.extend((client, server))
        else:
            server = tcp_server_stp(LOOPBACK, 0, **tcp_options)
            made.append(server)
            client = tcp_client_stp(LOOPBACK, server.port, **tcp_options)
            made.append(client)
        return client, server

    yield make
    for comm in reversed(made):
        assert comm.close() in (True, None)


@pytest.fixture
def make_pair(make_comms: Callable[..., Tuple[Any, Any]]) -> Callable[..., Tuple[Any, Any]]:
    """Factory of connected (client protocol, server protocol)."""

    def make(protocol: type = pure_json_protocol, client: Optional[Dict[str, Any]] = None,
             server: Optional[Dict[str, Any]] = None) -> Tuple[Any, Any]:
        client_comm, server_comm = make_comms()
        server_prot = protocol(server_comm, **(server or {}))
        client_prot = protocol(client_comm, **(client or {}))
        assert client_comm.wait_connected(WAIT) and server_comm.wait_connected(WAIT)
        return client_prot, server_prot

    return make
