"""Exceptions and warnings raised by :mod:`samp_compat`."""
import xmlrpc.client

__all__ = ["SAMPClientError", "SAMPHubError", "SAMPProxyError", "SAMPWarning"]


class SAMPWarning(UserWarning):
    """Warning emitted by SAMP hubs and clients."""


class SAMPHubError(Exception):
    """Error raised by a SAMP hub or when no usable hub can be reached."""


class SAMPClientError(Exception):
    """Error raised by a SAMP client (registration, binding, shutdown)."""


class SAMPProxyError(xmlrpc.client.Fault):
    """XML-RPC fault returned by a SAMP peer.

    Parameters
    ----------
    faultCode : int
        Numeric fault code.
    faultString : str
        Human readable description of the fault.
    """


class SAMPProxyTimeoutError(SAMPProxyError):
    """A SAMP call did not receive its response in time."""
