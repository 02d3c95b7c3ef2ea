"""Received headers decoded once per shape give exactly what decoding each header gives."""
import collections
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.messaging import MessageManager

BASE = {"byteorder": "little", "content-type": "json", "content-encoding": "utf-8",
        "content-length": 2, "message-type": "response", "requested_value": "v"}


def frame_with_header_text(text, content=b"{}"):
    data = text.encode("utf-8")
    return len(data).to_bytes(2, "big") + data + content


def frame(header, content=b'{"value": 1}'):
    header = dict(header, **{"content-length": len(content)})
    return frame_with_header_text(json.dumps(header, ensure_ascii=False), content)


def decoded_headers(*frames):
    decoder = MessageManager()
    return [message.jsonheader for data in frames for message in decoder.feed(data)]


def reference(data):
    length = int.from_bytes(data[:2], "big")
    return json.loads(data[2:2 + length].decode(), object_pairs_hook=collections.OrderedDict)


@pytest.mark.parametrize("request_id", ["0001", "0002", "abc9", "00-1", "é", 'a"b', "a\\b", ""])
def test_response_headers_with_any_id_decode_as_json_does(request_id):
    first, second = frame(dict(BASE, request_id="0100")), frame(dict(BASE, request_id=request_id))
    got = decoded_headers(first, second, second)
    assert got[1:] == [reference(second)] * 2
    assert [list(h) for h in got[1:]] == [list(reference(second))] * 2
    assert all(isinstance(h, collections.OrderedDict) for h in got)


def test_an_earlier_request_id_key_keeps_its_place_and_takes_the_last_value():
    text = ('{"request_id": "0001", "byteorder": "little", "content-type": "json", '
            '"content-encoding": "utf-8", "content-length": 2, "message-type": "response", '
            '"requested_value": "v", "request_id": "%s"}')
    frames = [frame_with_header_text(text % i) for i in ("0007", "0008", "0009")]
    got = decoded_headers(*frames)
    assert got == [reference(f) for f in frames]
    assert [list(h) for h in got] == [list(reference(f)) for f in frames]


def test_each_message_owns_its_header():
    data = frame(dict(BASE, **{"message-type": "message", "action": "a"}),
                 b'{"args": [], "kwargs": {}}')
    first, second = decoded_headers(data, data)
    first["action"] = "changed"
    assert second["action"] == "a" and decoded_headers(data)[0]["action"] == "a"


def test_id_appended_to_an_empty_object_is_still_refused():
    with pytest.raises(ValueError, match="Missing required header"):
        MessageManager().feed(frame_with_header_text("{}"))  # an empty header, decoded before
    with pytest.raises(ValueError, match="JSON header"):
        MessageManager().feed(frame_with_header_text('{, "request_id": "0001"}'))


def test_nesting_limit_applies_to_headers_seen_before_by_a_more_lenient_decoder():
    nested = dict(BASE, request_id="0001", extra=[[[1]]])
    lenient = MessageManager()
    lenient.max_json_depth = None
    data = frame(nested)
    assert lenient.feed(data)[0].jsonheader == reference(data)
    strict = MessageManager()
    strict.max_json_depth = 2
    with pytest.raises(ValueError, match="nested"):
        strict.feed(data)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                    st.floats(allow_nan=False, allow_infinity=False))


@settings(max_examples=200, deadline=None)
@given(extra=st.dictionaries(st.text(max_size=6), SCALARS, max_size=3),
       ids=st.lists(st.one_of(st.text(alphabet="0123456789abcXYZ", max_size=5), st.text(max_size=4)),
                    min_size=1, max_size=4))
def test_any_sequence_of_flat_response_headers_decodes_as_json_does(extra, ids):
    header = dict(BASE, **{k: v for k, v in extra.items() if k not in BASE})
    frames = []
    for request_id in ids:
        text = json.dumps(dict(header, request_id=request_id), ensure_ascii=False)
        frames.append(frame_with_header_text(text))
    got = decoded_headers(*frames)
    assert [list(h.items()) for h in got] == [list(reference(f).items()) for f in frames]
