"""Frame codecs of sockproto: no sockets, no threads.

Two layers:

* the **stp** byte-stuffing that delimits frames on a stream
  (:func:`stp_encode`, :class:`StpDecoder`), used by the TCP comm instances:
  ``StpDecoder.feed(data)`` returns the frames the bytes complete, with a
  :class:`BadFrame` where a malformed frame was dropped (the stream goes on);
* the **message frames** inside (:func:`encode_pure_frame` /
  :func:`decode_pure_frame` for :class:`~sockproto.protocol.pure_json_protocol`,
  :func:`encode_struct_frame` / :func:`decode_struct_frame` for
  :class:`~sockproto.protocol.struct_json_protocol`).

For any input, :class:`StpDecoder` never raises, and a message-frame decoder
returns a message or raises :class:`FrameError` (or its subclass
:class:`ChecksumError`); no other exception escapes.
JSON nested deeper than ``max_depth`` levels is refused before it is parsed,
so the depth a frame can reach does not depend on the caller's stack.
"""

import json
import struct
import zlib
from array import array
from itertools import accumulate
from typing import Any, Callable, List, Optional, Tuple, Union

from .storage import data_storage

__all__ = [
    "FrameError", "ChecksumError", "DEFAULT_MAX_FRAME_SIZE", "DEFAULT_MAX_JSON_DEPTH",
    "STP_SYNC", "STP_START", "STP_END",
    "stp_encode", "StpDecoder", "BadFrame", "StpItem",
    "encode_pure_frame", "decode_pure_frame", "PURE_CHECKSUM_SIZE",
    "encode_struct_frame", "decode_struct_frame", "STRUCT_HEADER", "json_too_deep",
]

BytesLike = Union[bytes, bytearray, memoryview]

#: Largest frame (after removing the stp escapes) accepted by default: 16 MiB.
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024

#: Deepest nesting of arrays and objects accepted in a message's data by default.
DEFAULT_MAX_JSON_DEPTH = 128

#: The stp sync byte; doubled inside a frame.
STP_SYNC = b":"
#: Start of an stp frame.
STP_START = b":<"
#: End of an stp frame.
STP_END = b":>"
_STP_ESCAPED_SYNC = b"::"
_SYNC_ORD = ord(":")
_START_ORD = ord("<")
_END_ORD = ord(">")

#: Size of the big-endian CRC-32 that ends a pure_json_protocol frame.
PURE_CHECKSUM_SIZE = 4
_CRC = struct.Struct(">I")
_U32_MAX = 0xFFFFFFFF
# json.dumps/json.loads with their default settings, without the per-call checks.
_JSON_ENCODER = json.JSONEncoder()
_JSON_ENCODE = _JSON_ENCODER.encode
_JSON_DECODER = json.JSONDecoder()
_JSON_DECODE = _JSON_DECODER.decode
_JSON_SCAN: Callable[[str, int], Tuple[Any, int]] = getattr(_JSON_DECODER, "scan_once")
_encode_ascii_str = json.encoder.encode_basestring_ascii
# CPython's C encoder with json.dumps' settings, made once and without the markers of the
# circular-reference check, so that it keeps no state between calls and one serves every
# thread. It is an implementation detail: checked against json.dumps once, unused if it differs.
_c_make_encoder: Optional[Callable[..., Any]] = getattr(json.encoder, "c_make_encoder", None)


def _shared_encoder() -> Optional[Callable[[Any, int], Any]]:
    if _c_make_encoder is None:
        return None
    probe = {"a": [1, 2.5, None, True, "\u00e9\n"], "b": {}}
    try:
        encoder = _c_make_encoder(None, _JSON_ENCODER.default, _encode_ascii_str, None, ": ",
                                  ", ", False, False, True)
        text = "".join(encoder(probe, 0))
    except Exception:
        return None
    return encoder if text == json.dumps(probe) else None


_SHARED_ENCODER = _shared_encoder()
# A pure frame's JSON object, written as json.dumps writes the dict with these keys in this order.
_PURE_HEAD = '{"status": %d, "service_id": %d, "data_id": %d, "data": '
_PURE_TAIL = "}"

#: Header of a struct_json_protocol frame: status, service_id, data_id.
STRUCT_HEADER = struct.Struct(">III")
_STRUCT_CHECKSUM_SIZE = 1

_KEYS = (data_storage.KEY_STATUS, data_storage.KEY_SERVICE_ID, data_storage.KEY_DATA_ID)
_PURE_KEYS = _KEYS + (data_storage.KEY_DATA,)


class FrameError(ValueError):
    """A frame could not be decoded (and was dropped)."""


class ChecksumError(FrameError):
    """A frame's checksum does not match its content.

    Attributes
    ----------
    message : data_storage or None
        The message as far as it could still be read (its content is not
        trustworthy), or None.
    """

    def __init__(self, text: str, message: Optional[data_storage] = None) -> None:
        super().__init__(text)
        self.message = message


# -- stp -------------------------------------------------------------------
def stp_encode(data: bytes) -> bytes:
    """Wrap one frame for the stream: ``:<`` + data with ``:`` doubled + ``:>``.

    Parameters
    ----------
    data : bytes or bytearray
        The frame content.

    Returns
    -------
    framed : bytes
    """
    return STP_START + data.replace(STP_SYNC, _STP_ESCAPED_SYNC) + STP_END


class BadFrame:
    """Stands in the output of :meth:`StpDecoder.feed` for a frame that was dropped.

    The stream goes on after it; the receiver logs it and reads on.

    Attributes
    ----------
    reason : str
        What was wrong with the frame, e.g. ``"frame longer than 1024 bytes: dropped"``.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return "BadFrame(%r)" % (self.reason,)


#: What :meth:`StpDecoder.feed` returns: frames, and markers of dropped frames.
StpItem = Union[bytes, BadFrame]


class StpDecoder:
    """Incremental stp decoder: stream bytes in, whole frames out.

    Bytes outside a frame are skipped until the next ``:<``. Inside a frame,
    ``::`` is one ``:`` and ``:>`` ends the frame; ``:<`` drops the partial
    frame and starts a new one (resync); ``:`` followed by any other byte
    drops the frame and skips to the next ``:<``. A frame longer than
    ``max_frame_size`` is dropped as soon as it is known to be too long, and
    the rest of it skipped, so memory stays bounded by about
    ``max_frame_size`` plus one fed chunk. A dropped frame appears in the
    output as a :class:`BadFrame`. How the bytes are cut into chunks does not
    change the output.

    Parameters
    ----------
    max_frame_size : int, optional
        Largest accepted frame content, in bytes.

    Raises
    ------
    ValueError
        ``max_frame_size`` is negative.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < 0:
            raise ValueError("max_frame_size must be >= 0, not %r" % (max_frame_size,))
        self.max_frame_size = max_frame_size
        self._in_frame = False
        self._frame = bytearray()  # unescaped content of the frame being read
        self._pending = b""  # a ':' at the end of the input whose next byte decides
        self._skipped = 0

    @property
    def skipped(self) -> int:
        """Number of stream bytes skipped outside frames so far."""
        return self._skipped

    @property
    def buffered(self) -> int:
        """Bytes held by the decoder (the partial frame, and a ':' held back)."""
        return len(self._frame) + len(self._pending)

    def feed(self, data: BytesLike) -> List[StpItem]:
        """Take stream bytes; return the frames they complete, in order.

        Parameters
        ----------
        data : bytes, bytearray or memoryview

        Returns
        -------
        items : list of bytes or BadFrame
            Each complete frame's content; a :class:`BadFrame` where a
            malformed or too long frame was dropped. Empty if more bytes are
            needed.
        """
        if type(data) is not bytes:
            data = bytes(data)
        if self._pending:
            data = self._pending + data
            self._pending = b""
        elif not self._in_frame and data.startswith(STP_START) and data.endswith(STP_END):
            # The common case of request and answer: the bytes are one whole frame.
            # Every ':' inside is doubled exactly when unescaping halves their count.
            content = data[2:-2]
            frame = content.replace(_STP_ESCAPED_SYNC, STP_SYNC)
            if (content.count(STP_SYNC) == 2 * frame.count(STP_SYNC)
                    and len(frame) <= self.max_frame_size):
                return [frame]
        out: List[StpItem] = []
        pos = 0
        size = len(data)
        while pos < size:
            if not self._in_frame:
                start = data.find(STP_START, pos)
                if start < 0:
                    # A trailing ':' may begin the next ':<'.
                    keep = 1 if data[-1] == _SYNC_ORD else 0
                    self._skipped += size - pos - keep
                    self._pending = data[size - keep:]
                    return out
                self._skipped += start - pos
                pos = start + len(STP_START)
                self._in_frame = True
            pos = self._read_plain(data, pos, out)
        return out

    def decode(self, data: BytesLike) -> List[bytes]:
        """Feed ``data`` and return the complete frames, without the dropped ones.

        Parameters
        ----------
        data : bytes, bytearray or memoryview

        Returns
        -------
        frames : list of bytes
        """
        return [item for item in self.feed(data) if type(item) is bytes]

    def _read_plain(self, data: bytes, pos: int, out: List[StpItem]) -> int:
        """Read frame content from ``data[pos:]`` in one go where every ':' is doubled.

        That is the common case: the rest of a frame, or all of it, with
        nothing wrong. Anything else is left to :meth:`_read_escapes`.
        Returns where reading stopped.
        """
        end = data.find(STP_END, pos)
        run = data[pos:] if end < 0 else data[pos:end]
        pending = b""
        if STP_SYNC in run:
            unpaired = run.replace(_STP_ESCAPED_SYNC, b"")
            if STP_SYNC in unpaired:
                if end >= 0 or unpaired.find(STP_SYNC) != len(unpaired) - 1:
                    return self._read_escapes(data, pos, out)
                # The run ends with an escape whose second byte has not arrived.
                run = run[:-1]
                pending = STP_SYNC
            run = run.replace(_STP_ESCAPED_SYNC, STP_SYNC)
        frame = self._frame
        if len(frame) + len(run) > self.max_frame_size:
            return self._read_escapes(data, pos, out)  # finds where the frame became too long
        if end < 0:
            frame += run
            self._pending = pending
            return len(data)
        if frame:
            frame += run
            run = bytes(frame)
            self._frame = bytearray()
        out.append(run)
        self._in_frame = False
        return end + len(STP_END)

    def _read_escapes(self, data: bytes, pos: int, out: List[StpItem]) -> int:
        """Read frame content from ``data[pos:]`` escape by escape, up to the frame's end or drop.

        Returns where reading stopped.
        """
        frame = self._frame
        limit = self.max_frame_size
        size = len(data)
        while True:
            sync = data.find(STP_SYNC, pos)
            stop = size if sync < 0 else sync
            room = limit - len(frame)
            if stop - pos > room:
                # Too long: the bytes after the first one over the limit are outside a frame.
                self._drop(out, "frame longer than %d bytes: dropped" % limit)
                return pos + room + 1
            frame += data[pos:stop]
            if sync < 0:
                return size
            if sync + 1 == size:
                self._pending = STP_SYNC  # the byte after ':' has not arrived yet
                return size
            code = data[sync + 1]
            pos = sync + 2
            if code == _SYNC_ORD:
                frame.append(_SYNC_ORD)
                if len(frame) > limit:
                    self._drop(out, "frame longer than %d bytes: dropped" % limit)
                    return pos
            elif code == _END_ORD:
                out.append(bytes(frame))
                self._frame = bytearray()
                self._in_frame = False
                return pos
            elif code == _START_ORD:
                self._drop(out, "frame start inside a frame: %d bytes dropped" % len(frame))
                self._in_frame = True
                return pos
            else:
                self._drop(out, "invalid stp escape b':%s': %d bytes dropped"
                           % (chr(code) if 32 <= code < 127 else "\\x%02x" % code, len(frame)))
                return pos

    def _drop(self, out: List[StpItem], reason: str) -> None:
        """Drop the frame being read, noting why; reading goes on outside a frame."""
        out.append(BadFrame(reason))
        self._frame = bytearray()
        self._in_frame = False


# -- message frames ----------------------------------------------------------
def _check_header(status: Any, service_id: Any, data_id: Any) -> None:
    if type(status) is int and type(service_id) is int and type(data_id) is int:
        return
    for name, value in zip(_KEYS, (status, service_id, data_id)):
        if type(value) is not int:
            raise TypeError("%s must be an int, not %r" % (name, value))


def _json_text(data: Any) -> str:
    """``json.dumps(data)``.

    ``JSONEncoder.encode`` builds its C encoder anew on every call (with a
    fresh dict for the circular-reference check); this uses one encoder
    made once, without that check: a circular reference then ends in a
    RecursionError, and only then is ``json.dumps``' own way taken, which
    raises what it raises (ValueError for a circular reference).
    """
    if _SHARED_ENCODER is None:
        return _JSON_ENCODE(data)
    try:
        return "".join(_SHARED_ENCODER(data, 0))
    except RecursionError:
        return _JSON_ENCODE(data)


# Frames up to this size count their brackets with bytes.count; longer ones
# look for them with find(), which stops once there are more than enough.
_COUNT_SCAN_SIZE = 4096
_ESCAPED_BACKSLASH = b"\\\\"
_ESCAPED_QUOTE = b'\\"'
# bytes.translate arguments that keep only brackets and quotes, with '[' and '{'
# written as '(' and ']' and '}' as ')'.
_NESTING_TABLE = bytes.maketrans(b"[{]}", b"(())")
_NOT_NESTING = bytes(set(range(256)) - set(b'[]{}"'))
# '(' as +1 and ')' as -1, read as signed bytes.
_STEP_TABLE = bytes.maketrans(b"()", b"\x01\xff")
_LEAF = b"()"
_EMPTY_STRING = b'""'
# Rounds of removing innermost pairs before the rest is measured in one pass.
_PEEL_ROUNDS = 8


def _more_openers_than(text: bytes, limit: int) -> bool:
    """True if ``text`` holds more than ``limit`` bytes '[' and '{'."""
    if len(text) <= _COUNT_SCAN_SIZE:
        return text.count(b"[") + text.count(b"{") > limit
    found = 0
    for opener in (b"[", b"{"):
        pos = text.find(opener)
        while pos >= 0:
            found += 1
            if found > limit:
                return True
            pos = text.find(opener, pos + 1)
    return False


def json_too_deep(text: bytes, max_depth: int) -> bool:
    """True if the JSON ``text`` nests arrays and objects deeper than ``max_depth``.

    Brackets inside strings do not count. For valid JSON the answer is exact;
    for invalid JSON it is True whenever a parser would nest deeper than
    ``max_depth`` before finding the error. The work is a few passes over
    ``text`` in C, and only a count when there are few brackets.

    Parameters
    ----------
    text : bytes
        UTF-8 JSON text.
    max_depth : int
        The deepest nesting allowed; a scalar has depth 0, ``[]`` depth 1.

    Returns
    -------
    too_deep : bool
    """
    if len(text) <= max_depth or not _more_openers_than(text, max_depth):
        return False
    if b"\\" in text:  # escaped quotes must not end a string
        text = text.replace(_ESCAPED_BACKSLASH, b"").replace(_ESCAPED_QUOTE, b"")
    nesting = text.translate(_NESTING_TABLE, _NOT_NESTING)
    if b'"' in nesting:
        # Strings without brackets first (cheap), then the rest: outside strings only.
        nesting = nesting.replace(_EMPTY_STRING, b"")
        if b'"' in nesting:
            nesting = b"".join(nesting.split(b'"')[::2])
    if b"(" * (max_depth + 1) in nesting:
        return True
    # Each round removes the innermost pairs, one level of depth. Shallow JSON
    # is done after a few; deeper JSON has the rest measured in one pass.
    for peeled in range(_PEEL_ROUNDS):
        reduced = nesting.replace(_LEAF, b"")
        if len(reduced) == len(nesting):
            # No pair left: ')...)(...(' of invalid JSON, or nothing.
            return reduced.count(b"(") + peeled > max_depth
        nesting = reduced
    depth = max(accumulate(array("b", nesting.translate(_STEP_TABLE))), default=0)
    return depth + _PEEL_ROUNDS > max_depth


def _loads(text: bytes, max_depth: int) -> Any:
    if len(text) > max_depth and json_too_deep(text, max_depth):  # short texts cannot be too deep
        raise FrameError("frame content is nested deeper than %d levels" % max_depth)
    try:
        decoded = text.decode("utf-8")
        # The common case: one value with nothing around it. Anything else
        # (surrounding whitespace, extra data, bad JSON) gets json.loads' rules and errors.
        try:
            value, end = _JSON_SCAN(decoded, 0)
            if end == len(decoded):
                return value
        except StopIteration:
            pass
        return _JSON_DECODE(decoded)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameError("frame content is not UTF-8 JSON: %s" % exc) from None


def encode_pure_frame(status: int, service_id: int, data_id: int, data: Any) -> bytes:
    """Build a pure_json_protocol frame: JSON object + 4-byte CRC-32.

    Parameters
    ----------
    status, service_id, data_id : int
    data : any
        A JSON-serialisable value.

    Returns
    -------
    frame : bytes

    Raises
    ------
    TypeError
        ``data`` is not JSON-serialisable, or an id is not an int.
    ValueError
        ``data`` holds a circular reference or a non-finite float that JSON
        cannot carry.
    """
    if type(status) is not int or type(service_id) is not int or type(data_id) is not int:
        _check_header(status, service_id, data_id)
    # The JSON object as json.dumps writes the dict of the four keys in this order.
    body = (_PURE_HEAD % (status, service_id, data_id) + _json_text(data) + _PURE_TAIL).encode()
    return body + _CRC.pack(zlib.crc32(body))


def _message_from_object(obj: Any) -> data_storage:
    if type(obj) is dict and tuple(obj) == _PURE_KEYS:
        # The common case, as this module writes it: the four keys in their order.
        status, service_id, data_id, _data = obj.values()
        if type(status) is int and type(service_id) is int and type(data_id) is int:
            return data_storage(obj)
    if not isinstance(obj, dict):
        raise FrameError("frame content is not a JSON object")
    status, service_id, data_id = obj.get("status"), obj.get("service_id"), obj.get("data_id")
    if type(status) is not int or type(service_id) is not int or type(data_id) is not int:
        for key, value in zip(_KEYS, (status, service_id, data_id)):
            if type(value) is not int:
                raise FrameError("frame field %r is not an integer: %r" % (key, value))
    return data_storage(status=status, service_id=service_id, data_id=data_id, data=obj.get("data"))


def decode_pure_frame(frame: bytes, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> data_storage:
    """Read a pure_json_protocol frame.

    Parameters
    ----------
    frame : bytes
    max_depth : int, optional
        Deepest nesting of arrays and objects accepted in the data (the
        message object around it is not counted).

    Returns
    -------
    message : data_storage

    Raises
    ------
    ChecksumError
        The CRC-32 does not match (``message`` holds what could be read).
    FrameError
        The frame is too short, not JSON, nested too deeply, or lacks an
        integer field.
    """
    size = len(frame)
    if size < PURE_CHECKSUM_SIZE:
        raise FrameError("frame of %d bytes is shorter than its checksum" % size)
    body = bytes(frame[:-PURE_CHECKSUM_SIZE])
    if zlib.crc32(body) != _CRC.unpack_from(frame, size - PURE_CHECKSUM_SIZE)[0]:
        raise ChecksumError("checksum mismatch", _best_effort(lambda: decode_body(body, max_depth)))
    if (size <= max_depth or body.count(b"[") + body.count(b"{") <= max_depth + 1
            or not json_too_deep(body, max_depth + 1)):
        # The common case, written out: the four keys in their order, as this module writes
        # them, and nothing around the object. Anything else takes the general way below.
        try:
            text = body.decode()
            obj, end = _JSON_SCAN(text, 0)
        except (UnicodeDecodeError, ValueError, RecursionError, StopIteration):
            pass
        else:
            if end == len(text) and type(obj) is dict and tuple(obj) == _PURE_KEYS:
                status, service_id, data_id, _data = obj.values()
                if type(status) is int and type(service_id) is int and type(data_id) is int:
                    return data_storage(obj)
    return _message_from_object(_loads(body, max_depth + 1))


def decode_body(body: bytes, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> data_storage:
    """Read the JSON object of a pure_json_protocol frame (no checksum).

    Parameters
    ----------
    body : bytes
    max_depth : int, optional
        As for :func:`decode_pure_frame`.

    Returns
    -------
    message : data_storage

    Raises
    ------
    FrameError
        As for :func:`decode_pure_frame`.
    """
    return _message_from_object(_loads(body, max_depth + 1))


def _best_effort(read: Any) -> Optional[data_storage]:
    try:
        return read()
    except FrameError:
        return None


def _xor(data: bytes) -> int:
    """XOR of all bytes, by folding the bytes as one big integer in halves."""
    width = len(data)
    word = int.from_bytes(data, "little")
    while width > 1:
        half = (width + 1) // 2
        word = (word & ((1 << (8 * half)) - 1)) ^ (word >> (8 * half))
        width = half
    return word


def encode_struct_frame(status: int, service_id: int, data_id: int, data: Any) -> bytes:
    """Build a struct_json_protocol frame: ``>III`` header + JSON data + XOR byte.

    Parameters
    ----------
    status, service_id, data_id : int
        Each 0 ... 2**32 - 1.
    data : any
        A JSON-serialisable value.

    Returns
    -------
    frame : bytes

    Raises
    ------
    TypeError
        ``data`` is not JSON-serialisable, or an id is not an int.
    ValueError
        An id does not fit in 32 unsigned bits, or ``data`` cannot be JSON.
    """
    _check_header(status, service_id, data_id)
    try:
        head = STRUCT_HEADER.pack(status, service_id, data_id)
    except struct.error:
        raise ValueError("status, service_id and data_id must be 0..%d, not %r"
                         % (_U32_MAX, (status, service_id, data_id))) from None
    body = head + _json_text(data).encode("utf-8")
    return body + bytes((_xor(body),))


def decode_struct_frame(frame: bytes, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> data_storage:
    """Read a struct_json_protocol frame.

    Parameters
    ----------
    frame : bytes
    max_depth : int, optional
        Deepest nesting of arrays and objects accepted in the data.

    Returns
    -------
    message : data_storage

    Raises
    ------
    ChecksumError
        The XOR byte does not match (``message`` holds what could be read).
    FrameError
        The frame is too short or its data is not JSON or nested too deeply.
    """
    if len(frame) < STRUCT_HEADER.size + _STRUCT_CHECKSUM_SIZE:
        raise FrameError("frame of %d bytes is shorter than header and checksum" % len(frame))
    body = bytes(frame[:-_STRUCT_CHECKSUM_SIZE])

    def read() -> data_storage:
        status, service_id, data_id = STRUCT_HEADER.unpack_from(body)
        return data_storage(status=status, service_id=service_id, data_id=data_id,
                            data=_loads(body[STRUCT_HEADER.size:], max_depth))

    if _xor(body) != frame[-1]:
        raise ChecksumError("checksum mismatch", _best_effort(read))
    return read()
