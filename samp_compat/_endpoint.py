"""The callback endpoint of a callable SAMP client: its XML-RPC server, plain or TLS."""
import socket
import ssl
from typing import Any, Callable, Dict, Optional, Tuple

from .errors import SAMPClientError
from .standard_profile import ThreadingXMLRPCServer
from .utils import internet_on

#: Worker threads of a callback server (the client's bindings run on them).
CALLBACK_WORKERS = 8
#: The endpoint's host when the internet is not used.
LOCALHOST = "127.0.0.1"


def endpoint_host(addr: Optional[str], port: int) -> str:
    """The host name of a client's endpoint when no address is given.

    Parameters
    ----------
    addr : str or None
        The address the client asked to listen on.
    port : int
        The port it asked for.

    Returns
    -------
    host : str
        127.0.0.1, or this machine's name when the internet may be used
        (``conf.use_internet``) and the name resolves.
    """
    if not internet_on():
        return LOCALHOST
    try:
        host = socket.getfqdn()
        socket.getaddrinfo(addr or host, port or 0)
    except OSError:
        return LOCALHOST
    return host


def server_ssl_context(key_file: Optional[str], cert_file: Optional[str], cert_reqs: int,
                       ca_certs: Optional[str], ssl_version: Optional[int]) -> ssl.SSLContext:
    """Build the TLS context of an HTTPS callback server.

    Parameters
    ----------
    key_file, cert_file : str or None
        Private key (may be part of ``cert_file``) and certificate; the
        certificate is required.
    cert_reqs : int
        ``ssl.CERT_NONE``, ``ssl.CERT_OPTIONAL`` or ``ssl.CERT_REQUIRED``.
    ca_certs : str or None
        CA certificates that check the peer's certificate (required unless
        ``cert_reqs`` is ``ssl.CERT_NONE``).
    ssl_version : int or None
        ``ssl.PROTOCOL_*`` constant; default ``ssl.PROTOCOL_TLS_SERVER``.

    Returns
    -------
    context : ssl.SSLContext

    Raises
    ------
    SAMPClientError
        A required file is missing.
    """
    if cert_file is None:
        raise SAMPClientError("https=True needs cert_file (and key_file unless it is in cert_file)")
    protocol = ssl.PROTOCOL_TLS_SERVER if ssl_version is None else ssl_version
    context = ssl.SSLContext(protocol)
    context.load_cert_chain(cert_file, key_file)
    context.verify_mode = ssl.VerifyMode(cert_reqs)
    if ca_certs is not None:
        context.load_verify_locations(ca_certs)
    elif cert_reqs != ssl.CERT_NONE:
        raise SAMPClientError("cert_reqs other than ssl.CERT_NONE needs ca_certs")
    return context


def callback_server(host: str, port: int, context: Optional[ssl.SSLContext],
                    methods: Dict[str, Callable[..., Any]]) -> Tuple[ThreadingXMLRPCServer, str]:
    """Make (not start) the XML-RPC server of a client's callbacks.

    Parameters
    ----------
    host : str
        Address to listen on.
    port : int
        Port; 0 picks a free one.
    context : ssl.SSLContext or None
        Serve HTTPS with this context.
    methods : dict
        ``{"samp.client.<name>": callable}``.

    Returns
    -------
    server : ThreadingXMLRPCServer
        Also answers ``system.listMethods``, ``system.methodHelp`` and ``system.methodSignature``.
    url : str
        ``http(s)://host:port`` of the server (the client's ``xmlrpc_addr``).
    """
    server = ThreadingXMLRPCServer((host, port), ssl_context=context, pool_size=CALLBACK_WORKERS,
                                   name="SAMPClient", allow_none=True)
    server.register_introspection_functions()
    for name, function in methods.items():
        server.register_function(function, name)
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return server, "%s://%s:%d" % ("https" if context is not None else "http", host,
                                   server.server_address[1])
