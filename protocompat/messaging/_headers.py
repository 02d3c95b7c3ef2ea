"""Received JSON headers decoded once per shape: the headers a connection receives repeat.

The header of a request or an action is the same bytes every time its content
has the same length; a response's differs only in its ``request_id``, the last
key, which protocompat and clever-show write as a short string of letters and
digits. :class:`HeaderCache` keeps the decoded form of such headers (of a
response: of its text without the id) and gives each message its own copy,
identical to what decoding the whole text gives. Only flat headers (no array
or object values) are kept, so no nesting limit can be passed by a copy.
"""

import threading
from typing import Any, Dict, Optional

from ._json import json_decode

#: Headers (and response header shapes) kept; once full, further ones are decoded each time.
MAX_CACHED_HEADERS = 512
#: Longest header kept, in bytes (the usual ones are 100 to 250 bytes long).
MAX_CACHED_HEADER_BYTES = 1024
# What comes before a response's id at the end of its header, and what ends it.
_ID_KEY = b', "request_id": "'
_ID_END = b'"}'
_ID_NAME = "request_id"


def _flat(header: Any) -> bool:
    """True if ``header`` is an object none of whose values is an array or an object."""
    if not isinstance(header, dict):
        return False
    for value in header.values():
        if isinstance(value, (list, dict)):
            return False
    return True


class HeaderCache:
    """Decoded headers by their bytes, and response header shapes by their bytes before the id.

    Safe from any thread (entries are only ever added, under a lock). At most
    :data:`MAX_CACHED_HEADERS` entries of at most :data:`MAX_CACHED_HEADER_BYTES`
    each are kept, whatever peers send; headers past either bound are decoded
    each time.
    """

    def __init__(self, size: int = MAX_CACHED_HEADERS) -> None:
        self._size = size
        self._headers: Dict[bytes, Any] = {}
        self._lock = threading.Lock()

    def decode(self, raw: Any, max_depth: Optional[int]) -> Any:
        """The decoded header ``raw`` (a new object each call); ValueError as :func:`json_decode`."""
        if type(raw) is not bytes or len(raw) > MAX_CACHED_HEADER_BYTES \
                or (max_depth is not None and max_depth < 1):
            return json_decode(raw, "utf-8", max_depth)
        headers = self._headers
        known = headers.get(raw)
        if known is not None:
            return known.copy()
        shape, request_id = _response_shape(raw)
        if shape is not None:
            known = headers.get(shape)
            if known:  # not "{}": "{" followed by the id would not be JSON
                header = known.copy()
                header[_ID_NAME] = request_id  # keeps the key's place, as decoding does
                return header
        header = json_decode(raw, "utf-8", max_depth)
        if len(headers) < self._size and _flat(header):
            if _ID_NAME not in header:
                self._keep(raw, header)
            elif shape is not None:
                try:
                    without_id = json_decode(shape, "utf-8", max_depth)
                except ValueError:  # not expected of valid JSON; then nothing is kept
                    without_id = None
                if without_id and _flat(without_id):
                    self._keep(shape, without_id)
        return header

    def _keep(self, key: bytes, header: Any) -> None:
        with self._lock:
            if len(self._headers) < self._size:
                self._headers[key] = header.copy()


def _response_shape(raw: bytes) -> Any:
    """``(raw without its id, the id)`` if ``raw`` ends with a plain ``"request_id"``, else ``(None, None)``."""
    cut = raw.rfind(_ID_KEY)
    if cut < 0 or not raw.endswith(_ID_END):
        return None, None
    value = raw[cut + len(_ID_KEY):-len(_ID_END)]
    if not value.isalnum():  # ASCII letters and digits only: no escapes, no quotes
        return None, None
    return raw[:cut] + b"}", value.decode("ascii")
