"""Constants of the SAMP protocol as used by :mod:`samp_compat`."""
import struct
import zlib
from typing import List

__all__ = [
    "SAFE_MTYPES",
    "SAMP_ICON",
    "SAMP_STATUS_ERROR",
    "SAMP_STATUS_OK",
    "SAMP_STATUS_WARNING",
]

#: Version of the SAMP Standard Profile implemented.
__profile_version__ = "1.3"

#: Status string of a successful response.
SAMP_STATUS_OK = "samp.ok"
#: Status string of a response that succeeded with a warning.
SAMP_STATUS_WARNING = "samp.warning"
#: Status string of a failed response.
SAMP_STATUS_ERROR = "samp.error"

#: MType patterns considered harmless for Web Profile clients.
SAFE_MTYPES: List[str] = [
    "samp.app.*",
    "samp.msg.progress",
    "table.*",
    "image.*",
    "coord.*",
    "spectrum.*",
    "bibcode.*",
    "voresource.*",
]

_ICON_SIZE = 32
_ICON_RING = (40, 90, 170)
_ICON_FILL = (250, 250, 250)
_ICON_OUTER = 15.5
_ICON_INNER = 10.5


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def _make_icon() -> bytes:
    """Draw the hub icon: a blue ring on a white square, as an RGB PNG."""
    centre = (_ICON_SIZE - 1) / 2.0
    rows = []
    for y in range(_ICON_SIZE):
        row = bytearray(b"\x00")  # filter type "None"
        for x in range(_ICON_SIZE):
            dist = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5
            row += bytes(_ICON_RING if _ICON_INNER <= dist <= _ICON_OUTER else _ICON_FILL)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", _ICON_SIZE, _ICON_SIZE, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + _png_chunk(b"IEND", b"")
    )


#: PNG image served by the hub as its ``samp.icon.url``.
SAMP_ICON: bytes = _make_icon()
