"""The HTTP head parsers on their own: requests (server side) and responses (client side)."""
import pytest
from hypothesis import given, strategies as st

from samp_compat import _http

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-",
                min_size=1, max_size=20)
VALUE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e),
                min_size=0, max_size=40)
HEADERS = st.dictionaries(TOKEN.map(str.lower), VALUE, max_size=10)
VERSION = st.sampled_from(["HTTP/1.0", "HTTP/1.1"])


def head(first_line, headers):
    lines = [first_line] + ["%s: %s" % item for item in headers.items()]
    return "\r\n".join(lines).encode("latin-1")


@given(method=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=10),
       path=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e),
                    min_size=1, max_size=60),
       version=VERSION, headers=HEADERS)
def test_request_head_round_trips(method, path, version, headers):
    parsed = _http.parse_request_head(head("%s %s %s" % (method, path, version), headers))
    assert parsed[:3] == (method, path, version)
    assert dict(parsed[3]) == headers


@given(st.binary(max_size=300))
def test_any_request_head_parses_or_is_an_http_error(data):
    try:
        _http.parse_request_head(data)
    except _http.HTTPError as exc:
        assert exc.status in (400, 431, 505)


def test_request_head_names_are_case_insensitive():
    *_, headers = _http.parse_request_head(b"POST / HTTP/1.1\r\nContent-Length: 3")
    assert headers["content-length"] == headers["CONTENT-LENGTH"] == "3"


@pytest.mark.parametrize("data, status", [
    (b"POST /", 400),
    (b"POST / HTTP/2.0", 505),
    (b"POST / HTTP/1.1\r\nName : x", 400),
    (b"POST / HTTP/1.1\r\n folded", 400),
    (b"POST / HTTP/1.1" + b"\r\nA: b" * (_http.MAX_HEADER_COUNT + 1), 431),
    (b"POST /" + b"x" * _http.MAX_HEADER_BYTES + b" HTTP/1.1", 431),
])
def test_bad_request_heads_get_their_status(data, status):
    with pytest.raises(_http.HTTPError) as info:
        _http.parse_request_head(data)
    assert info.value.status == status


@given(version=VERSION, status=st.integers(100, 599),
       reason=st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", max_size=20), headers=HEADERS)
def test_response_head_round_trips(version, status, reason, headers):
    parsed = _http.parse_response_head(head("%s %d %s" % (version, status, reason), headers))
    assert (parsed.version, parsed.status, parsed.reason) == (version, status, reason)
    assert dict(parsed.headers) == headers


@given(st.binary(max_size=300))
def test_any_response_head_parses_or_is_a_bad_response(data):
    try:
        parsed = _http.parse_response_head(data)
    except _http.BadResponse:
        return
    assert 0 <= parsed.status <= 999


def test_response_head_without_reason_is_accepted():
    assert _http.parse_response_head(b"HTTP/1.0 200").status == 200


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 20 OK", b"HTTP/1.1 2000 OK", b"HTTP/1.1 \xb2\xb2\xb2 OK", b"ICY 200 OK",
    b"HTTP/1.1 200 OK\r\nno colon", b"HTTP/1.1 200 OK\r\n folded: x",
    b"HTTP/1.1 200 OK" + b"\r\nA: b" * (_http.MAX_HEADER_COUNT + 1),
    b"HTTP/1.1 200 " + b"x" * _http.MAX_HEADER_BYTES,
])
def test_bad_response_heads_are_refused(data):
    with pytest.raises(_http.BadResponse):
        _http.parse_response_head(data)


@pytest.mark.parametrize("version, connection, keep_alive", [
    ("HTTP/1.1", None, True), ("HTTP/1.1", "close", False),
    ("HTTP/1.0", None, False), ("HTTP/1.0", "keep-alive", True),
])
def test_response_keep_alive_follows_version_and_connection(version, connection, keep_alive):
    headers = {"connection": connection} if connection else {}
    assert _http.parse_response_head(head(version + " 200 OK", headers)).keep_alive is keep_alive


@given(size=st.integers(0, 2 ** 64), upper=st.booleans(),
       extension=st.sampled_from(["", ";name=value"]))
def test_chunk_size_round_trips(size, upper, extension):
    text = ("%X" if upper else "%x") % size
    assert _http.parse_chunk_size((text + extension).encode()) == size


@given(st.binary(max_size=2 * _http.MAX_CHUNK_LINE))
def test_any_chunk_size_line_parses_or_is_a_bad_response(data):
    try:
        assert _http.parse_chunk_size(data) >= 0
    except _http.BadResponse:
        pass


@pytest.mark.parametrize("line", [b"", b"0x10", b"-1", b"g", b"\xb2", b"1" * 2000])
def test_bad_chunk_sizes_are_refused(line):
    with pytest.raises(_http.BadResponse):
        _http.parse_chunk_size(line)


def test_response_parser_returns_a_response_fed_byte_by_byte():
    parser = _http.ResponseParser(1000)
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    got = []
    for i in range(len(data)):
        got += parser.feed(data[i:i + 1])
    assert [(r.head.status, r.body) for r in got] == [(200, b"abc")]
    assert not parser.started


def test_response_parser_joins_chunks_and_skips_an_interim_100():
    parser = _http.ResponseParser(1000)
    got = parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n"
                      b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: 1\r\n\r\n")
    assert [(r.head.status, r.body) for r in got] == [(200, b"abcde")]


def test_response_parser_gives_a_body_without_length_when_the_server_closes():
    parser = _http.ResponseParser(1000)
    assert parser.feed(b"HTTP/1.0 200 OK\r\n\r\nxyz") == []
    response = parser.eof()
    assert (response.head.keep_alive, response.body) == (False, b"xyz")


def test_response_parser_refuses_a_body_over_its_limit():
    parser = _http.ResponseParser(10)
    with pytest.raises(_http.BadResponse, match="larger than 10 bytes"):
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
