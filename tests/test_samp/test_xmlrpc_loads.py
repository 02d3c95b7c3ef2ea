"""safe_xmlrpc_loads: stdlib-compatible results, and a clean error for anything else."""
import time
import xmlrpc.client

import pytest
from hypothesis import given, settings, strategies as st

from samp_compat.xmlrpc import (MAX_XMLRPC_BODY, MAX_XMLRPC_DEPTH, UnsafeXMLError,
                                safe_xmlrpc_loads)

from _xxe_payloads import INTERNAL_MARK, SECRET_MARK, response_payloads, request_payloads

SAMP_VALUES = st.recursive(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet="abcdefghij.-", min_size=1, max_size=8), children,
                      max_size=4),
    max_leaves=15,
)


def test_request_round_trip_matches_stdlib():
    data = xmlrpc.client.dumps(("key", {"samp.mtype": "x.y", "samp.params": {"a": ["1", "2"]}}),
                               "samp.hub.notifyAll")
    assert safe_xmlrpc_loads(data) == xmlrpc.client.loads(data)


def test_response_has_no_method_name():
    data = xmlrpc.client.dumps(({"samp.status": "samp.ok"},), methodresponse=True)
    assert safe_xmlrpc_loads(data) == (({"samp.status": "samp.ok"},), None)


def test_str_input_is_accepted():
    data = xmlrpc.client.dumps(("a",), "m")
    assert safe_xmlrpc_loads(data) == (("a",), "m")


def test_untyped_and_non_string_values_are_accepted():
    data = (b"<?xml version='1.0'?><methodCall><methodName>m</methodName><params>"
            b"<param><value>plain</value></param><param><value><i4>3</i4></value></param>"
            b"<param><value><boolean>1</boolean></value></param>"
            b"<param><value><double>1.5</double></value></param></params></methodCall>")
    assert safe_xmlrpc_loads(data) == (("plain", 3, True, 1.5), "m")


def test_fault_response_raises_fault():
    data = xmlrpc.client.dumps(xmlrpc.client.Fault(7, "Bad secret code"), methodresponse=True)
    with pytest.raises(xmlrpc.client.Fault) as info:
        safe_xmlrpc_loads(data)
    assert (info.value.faultCode, info.value.faultString) == (7, "Bad secret code")


@pytest.mark.parametrize("data", [
    b"", b"not xml", b"<methodCall>", b"<a></b>", b"<methodCall><params><param><value><int>x"
    b"</int></value></param></params></methodCall>",
    b"<methodResponse><params><param><value><boolean>7</boolean></value></param></params>"
    b"</methodResponse>",
    b"<methodResponse><bogus/></methodResponse>", b"\xff\xfe\x00garbage",
])
def test_malformed_input_raises_response_error(data):
    with pytest.raises(xmlrpc.client.ResponseError):
        safe_xmlrpc_loads(data)


@pytest.mark.parametrize("data", [b"not xml", b"<methodCall>", b"<a></b>"])
def test_malformed_xml_is_also_an_expat_error_as_upstream(data):
    from xml.parsers.expat import ExpatError
    with pytest.raises(ExpatError) as info:
        safe_xmlrpc_loads(data)
    assert isinstance(info.value, xmlrpc.client.ResponseError)
    assert str(info.value).startswith("malformed XML")


def test_non_bytes_input_raises_response_error():
    with pytest.raises(xmlrpc.client.ResponseError):
        safe_xmlrpc_loads(12)


def test_oversized_input_raises_response_error():
    with pytest.raises(xmlrpc.client.ResponseError):
        safe_xmlrpc_loads(b" " * (MAX_XMLRPC_BODY + 1))


def nested_arrays(depth):
    return (b"<methodResponse><params><param>" + b"<value><array><data>" * depth
            + b"</data></array></value>" * depth + b"</param></params></methodResponse>")


def test_too_deep_nesting_raises_response_error_that_says_so():
    with pytest.raises(xmlrpc.client.ResponseError) as info:
        safe_xmlrpc_loads(nested_arrays(MAX_XMLRPC_DEPTH + 1))
    assert info.value.args == ("XML-RPC document nested too deeply",)


def test_nesting_up_to_the_limit_is_accepted():
    (value,), _ = safe_xmlrpc_loads(nested_arrays(MAX_XMLRPC_DEPTH))
    for _ in range(MAX_XMLRPC_DEPTH - 1):
        value, = value
    assert value == []


def test_structs_count_towards_the_nesting_limit():
    depth = MAX_XMLRPC_DEPTH + 1
    data = (b"<methodResponse><params><param>"
            + b"<value><struct><member><name>a</name>" * depth + b"<value>x</value>"
            + b"</member></struct></value>" * depth + b"</param></params></methodResponse>")
    with pytest.raises(xmlrpc.client.ResponseError):
        safe_xmlrpc_loads(data)


def test_unsafe_error_is_value_error_and_response_error():
    assert issubclass(UnsafeXMLError, ValueError)
    assert issubclass(UnsafeXMLError, xmlrpc.client.ResponseError)


def test_doctype_without_entities_is_rejected():
    data = b'<?xml version="1.0"?><!DOCTYPE methodCall><methodCall><methodName>m</methodName></methodCall>'
    with pytest.raises(UnsafeXMLError):
        safe_xmlrpc_loads(data)


PAYLOADS = dict(response_payloads("file:///etc/hostname", "http://127.0.0.1:9/x.dtd"))
PAYLOADS.update(request_payloads("file:///etc/hostname", "http://127.0.0.1:9/x.dtd"))


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_entity_payload_is_rejected_quickly_without_echo(name):
    start = time.monotonic()
    with pytest.raises(xmlrpc.client.ResponseError) as info:
        safe_xmlrpc_loads(PAYLOADS[name])
    assert time.monotonic() - start < 2.0
    text = str(info.value)
    assert INTERNAL_MARK not in text and SECRET_MARK not in text and "lol" not in text
    if "undeclared" not in name:
        assert isinstance(info.value, UnsafeXMLError)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_params_or_a_clean_error(data):
    try:
        params, method = safe_xmlrpc_loads(data)
    except (xmlrpc.client.ResponseError, xmlrpc.client.Fault):
        return
    assert isinstance(params, tuple)
    assert method is None or isinstance(method, str)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_text_inside_a_call_gives_params_or_a_clean_error(text):
    data = "<methodCall><methodName>m</methodName><params><param><value>%s</value></param>" \
           "</params></methodCall>" % text
    try:
        safe_xmlrpc_loads(data)
    except (xmlrpc.client.ResponseError, xmlrpc.client.Fault):
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(SAMP_VALUES, max_size=4))
def test_samp_values_round_trip(params):
    data = xmlrpc.client.dumps(tuple(params), "samp.hub.notify")
    assert safe_xmlrpc_loads(data) == (tuple(params), "samp.hub.notify")
