"""The exceptions of socket_protocol's ``add_service``.

Both are reachable as ``sockproto.RequestSidExistsError`` and
``sockproto.ResponseSidExistsError`` (and from :mod:`sockproto.protocol`).
"""

__all__ = ["RequestSidExistsError", "ResponseSidExistsError"]


class RequestSidExistsError(Exception):
    """The request Service-ID given to ``add_service`` is in use already."""


class ResponseSidExistsError(Exception):
    """The response Service-ID given to ``add_service`` is in use already."""
