"""JSON text as clever-show writes it, and read back with a nesting limit.

Encoding gives exactly ``json.dumps(obj, ensure_ascii=False)``; decoding gives
what ``json.loads(text, object_pairs_hook=OrderedDict)`` gives, after checking
that the text is not nested deeper than a limit (the C scanner recurses once
per level, so deep input would otherwise end in ``RecursionError`` at a depth
that depends on the caller's stack).
"""

import array
import collections
import itertools
import json
import json.encoder
import re
from typing import Any, Optional, Union

#: Deepest nesting of arrays and objects accepted in received JSON.
MAX_JSON_DEPTH = 64

_ENCODER = json.JSONEncoder(ensure_ascii=False)
_DECODER = json.JSONDecoder(object_pairs_hook=collections.OrderedDict)
_scan_once = _DECODER.scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__
encode_str = json.encoder.encode_basestring  # what ensure_ascii=False uses for strings
# CPython's C encoder, used the way JSONEncoder.iterencode uses it; it is only an
# implementation detail, so it is checked against json.dumps once and dropped if it differs.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)

# A JSON string (with escapes), removed before brackets are counted; an unterminated one runs
# to the end of the text, so that every quote is consumed once and the scan stays linear.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
# Every byte but the four brackets, deleted from the text that is left.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Opening brackets become +1, closing ones -1 (as signed bytes).
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def fast_encoder_works() -> bool:
    """True if the C encoder, called directly, gives what ``json.dumps`` gives."""
    if _c_make_encoder is None:
        return False
    probe = {"a": [1, 2.5, None, True, "\u00e9\n"], "b": {}}
    try:
        text = "".join(_c_make_encoder({}, _ENCODER.default, encode_str, None,
                                       ": ", ", ", False, False, True)(probe, 0))
    except Exception:
        return False
    return text == json.dumps(probe, ensure_ascii=False)


if not fast_encoder_works():
    _c_make_encoder = None


def json_text(obj: Any) -> str:
    """``json.dumps(obj, ensure_ascii=False)``, without the per-call setup of the encoder."""
    if type(obj) is str:
        return encode_str(obj)
    if _c_make_encoder is None:
        return _ENCODER.encode(obj)
    # The arguments JSONEncoder.iterencode passes for a one-shot, unindented encode.
    chunks = _c_make_encoder({}, _ENCODER.default, encode_str, None, ": ", ", ",
                             False, False, True)(obj, 0)
    return "".join(chunks)


def json_encode(obj: Any, encoding: str = "utf-8") -> bytes:
    """``json.dumps(obj, ensure_ascii=False).encode(encoding)``."""
    return json_text(obj).encode(encoding)


def nesting_depth(text: str) -> int:
    """The deepest nesting of brackets outside strings in JSON ``text``."""
    outside = _STRING.sub("", text).encode("ascii", "ignore")  # valid JSON is ASCII outside strings
    steps = array.array("b")
    steps.frombytes(outside.translate(_BRACKET_STEPS, _NOT_BRACKETS))
    return max(itertools.accumulate(steps), default=0)


def check_depth(text: str, max_depth: int) -> None:
    """Raise ValueError if ``text`` nests arrays and objects deeper than ``max_depth``."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot be deeper than its number of opening brackets
    depth = nesting_depth(text)
    if depth > max_depth:
        raise ValueError("JSON nested %d levels deep, more than the maximum of %d"
                         % (depth, max_depth))


def json_decode(data: Union[bytes, bytearray], encoding: str = "utf-8",
                max_depth: Optional[int] = MAX_JSON_DEPTH) -> Any:
    """Decode JSON ``data`` into ``OrderedDict`` objects.

    Raises
    ------
    ValueError
        If the data is not valid JSON in ``encoding`` (``UnicodeDecodeError``
        is a ValueError) or nests deeper than ``max_depth`` (None: no limit
        but the interpreter's stack).
    """
    text = data.decode(encoding)
    # Valid JSON nested deeper than max_depth has more than max_depth brackets of each kind, so
    # shorter text is not counted (invalid text fails in the scanner below all the same).
    if max_depth is not None and len(text) > 2 * max_depth + 1 \
            and text.count("[") + text.count("{") > max_depth:
        check_depth(text, max_depth)  # as many opening brackets as that: measure the depth
    try:
        obj, end = _scan_once(text, 0)
    except (StopIteration, ValueError):
        pass  # leading whitespace or bad JSON: the full decoder decides (and words the error)
    except RecursionError:
        raise ValueError("JSON nested too deeply for the interpreter's stack") from None
    else:
        if end == len(text):
            return obj
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply for the interpreter's stack") from None
