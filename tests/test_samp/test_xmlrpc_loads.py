"""safe_xmlrpc_loads and xmlrpc_dumps: what the stdlib reads and writes, and a clean error for anything else."""
import time
import xmlrpc.client

import pytest
from hypothesis import given, settings, strategies as st

from samp_compat.xmlrpc import (MAX_XMLRPC_BODY, MAX_XMLRPC_DEPTH, UnsafeXMLError,
                                safe_xmlrpc_loads, xmlrpc_dumps)

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


# Documents read exactly as the stdlib reads them, whichever parser takes them.
SAME_AS_STDLIB = {
    "strings, structs, arrays": xmlrpc.client.dumps(
        ("k", {"samp.mtype": "x.y", "samp.params": {"a": ["1", "", "<&>"], "": "empty name"}}),
        "samp.hub.notify"),
    "numbers, booleans and nil": xmlrpc.client.dumps(
        (1, -2 ** 31, True, False, 1.5, -0.0, None, [None, {"n": 3}]), "m", allow_none=True),
    "response": xmlrpc.client.dumps(({"samp.status": "samp.ok"},), methodresponse=True),
    "untyped values with space around": "<methodResponse><params><param>\n<value> a b </value>"
                                        "\n</param></params></methodResponse>",
    "empty value and empty string": "<methodCall><methodName>m</methodName><params><param>"
                                    "<value></value></param><param><value><string/></value>"
                                    "</param></params></methodCall>",
    "text around a typed value": "<methodResponse><params><param><value> x <string>s</string>"
                                 " y </value></param></params></methodResponse>",
    "integer spellings": "<methodResponse><params><param><value><array><data><value><i4> 7 "
                         "</i4></value><value><i8>123456789012</i8></value><value><int>-0</int>"
                         "</value></data></array></value></param></params></methodResponse>",
    "nil with text": "<methodResponse><params><param><value><nil>x</nil></value></param>"
                     "</params></methodResponse>",
    "duplicate struct keys": "<methodResponse><params><param><value><struct><member><name>a"
                             "</name><value>1</value></member><member><name>a</name><value>2"
                             "</value></member></struct></value></param></params></methodResponse>",
    "no params": "<methodCall><methodName>m</methodName></methodCall>",
    "empty params": "<methodCall><methodName>m</methodName><params/></methodCall>",
    "two response params": "<methodResponse><params><param><value>a</value></param><param>"
                           "<value>b</value></param></params></methodResponse>",
    "entity and character references": "<methodResponse><params><param><value>&lt;&amp;&gt;"
                                       "&#233;&#x263A;</value></param></params></methodResponse>",
    "carriage returns": "<methodResponse><params><param><value>a\r\nb\rc</value></param>"
                        "</params></methodResponse>",
    "a comment": "<methodResponse><!-- c --><params><param><value>a</value></param></params>"
                 "</methodResponse>",
    "CDATA": "<methodResponse><params><param><value><![CDATA[<a>]]></value></param></params>"
             "</methodResponse>",
    "processing instruction": "<?xml version='1.0'?><?pi x?><methodResponse><params><param>"
                              "<value>a</value></param></params></methodResponse>",
    "date and binary": xmlrpc.client.dumps(
        (xmlrpc.client.DateTime("20240102T03:04:05"), xmlrpc.client.Binary(b"\x00\x01")), "m"),
    "namespaced nil": "<methodResponse xmlns:ex='http://ws.apache.org/xmlrpc/namespaces/extensions'>"
                      "<params><param><value><ex:nil/></value></param></params></methodResponse>",
    "undeclared prefix": "<methodResponse><params><param><value><ex:i8>5</ex:i8></value></param>"
                         "</params></methodResponse>",
    "member value before name": "<methodResponse><params><param><value><struct><member><value>v"
                                "</value><name>k</name></member></struct></value></param></params>"
                                "</methodResponse>",
    "latin-1 document": "<?xml version='1.0' encoding='iso-8859-1'?><methodResponse><params><param>"
                        "<value>caf\xe9</value></param></params></methodResponse>",
    "UTF-16 document": "<?xml version='1.0' encoding='utf-16'?><methodResponse><params><param>"
                       "<value>\u263a</value></param></params></methodResponse>",
    "double quoted UTF-8 declaration": '<?xml version="1.0" encoding="UTF-8"?><methodResponse>'
                                       '<params><param><value>\u263a</value></param></params>'
                                       '</methodResponse>',
    "unknown element inside a string": "<methodResponse><params><param><value><string>a<b/>c"
                                       "</string></value></param></params></methodResponse>",
    "attributes": "<methodResponse a='1'><params><param><value b='2'>x</value></param></params>"
                  "</methodResponse>",
}


def _document_bytes(name):
    text = SAME_AS_STDLIB[name]
    if "UTF-16" in name:
        return text.encode("utf-16")
    if "latin-1" in name:
        return text.encode("latin-1")
    return text.encode("utf-8")


@pytest.mark.parametrize("name", sorted(SAME_AS_STDLIB))
def test_document_reads_as_the_stdlib_reads_it(name):
    data = _document_bytes(name)
    assert safe_xmlrpc_loads(data) == xmlrpc.client.loads(data)


FAULT_WITH_EXTRA_KEY = (b"<methodResponse><fault><value><struct><member><name>faultCode</name>"
                        b"<value><int>1</int></value></member><member><name>faultString</name>"
                        b"<value>x</value></member><member><name>more</name><value>y</value>"
                        b"</member></struct></value></fault></methodResponse>")


@pytest.mark.parametrize("data", [
    b"<methodResponse><params><param><value><boolean> 1</boolean></value></param></params>"
    b"</methodResponse>",
    b"<methodResponse><params><param><value><double>x</double></value></param></params>"
    b"</methodResponse>",
    b"<methodResponse><params><param><value>&undeclared;</value></param></params></methodResponse>",
])
def test_document_the_stdlib_refuses_is_refused(data):
    with pytest.raises(Exception) as stdlib:
        xmlrpc.client.loads(data)
    with pytest.raises(xmlrpc.client.ResponseError):
        safe_xmlrpc_loads(data)
    assert not isinstance(stdlib.value, xmlrpc.client.Fault)


def test_fault_with_more_members_is_raised_as_the_stdlib_raises_it():
    with pytest.raises(xmlrpc.client.Fault) as stdlib:
        xmlrpc.client.loads(FAULT_WITH_EXTRA_KEY)
    with pytest.raises(xmlrpc.client.Fault) as ours:
        safe_xmlrpc_loads(FAULT_WITH_EXTRA_KEY)
    assert (ours.value.faultCode, ours.value.faultString) == (
        stdlib.value.faultCode, stdlib.value.faultString) == (1, "x")


def test_fault_with_text_code_is_raised_as_the_stdlib_raises_it():
    data = (b"<methodResponse><fault><value><struct><member><name>faultCode</name><value>E1"
            b"</value></member><member><name>faultString</name><value>no</value></member>"
            b"</struct></value></fault></methodResponse>")
    with pytest.raises(xmlrpc.client.Fault) as ours:
        safe_xmlrpc_loads(data)
    assert (ours.value.faultCode, ours.value.faultString) == ("E1", "no")


def test_deep_nesting_in_a_large_document_is_refused_quickly():
    depth = (MAX_XMLRPC_BODY - 100) // len(b"<value><array><data></data></array></value>")
    start = time.monotonic()
    with pytest.raises(xmlrpc.client.ResponseError) as info:
        safe_xmlrpc_loads(nested_arrays(depth))
    assert info.value.args == ("XML-RPC document nested too deeply",)
    assert time.monotonic() - start < 5.0


XML_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=10)
SCALARS = (st.integers(min_value=-2 ** 31, max_value=2 ** 31 - 1) | st.booleans() | st.none()
           | st.floats(allow_nan=False) | XML_TEXT)
ANY_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(XML_TEXT, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ANY_VALUES, max_size=4), st.booleans())
def test_values_read_as_the_stdlib_reads_them(params, response):
    if response:
        data = xmlrpc.client.dumps((params,), methodresponse=True, allow_none=True)
    else:
        data = xmlrpc.client.dumps(tuple(params), "m", allow_none=True)
    assert safe_xmlrpc_loads(data) == xmlrpc.client.loads(data)


# -- writing: xmlrpc_dumps writes what the stdlib writes, or raises what it raises ----------

@settings(max_examples=200, deadline=None)
@given(st.lists(ANY_VALUES | st.integers(), max_size=4), st.booleans(), st.booleans())
def test_xmlrpc_dumps_writes_what_the_stdlib_writes(params, response, allow_none):
    params = (params,) if response else tuple(params)
    kwargs = {"methodresponse": True} if response else {"methodname": "samp.hub.notify"}
    try:
        expected = xmlrpc.client.dumps(params, allow_none=allow_none, **kwargs)
    except (TypeError, OverflowError) as exc:
        with pytest.raises(type(exc)):
            xmlrpc_dumps(params, allow_none=allow_none, **kwargs)
        return
    assert xmlrpc_dumps(params, allow_none=allow_none, **kwargs) == expected


@pytest.mark.parametrize("params", [
    (xmlrpc.client.DateTime("20240102T03:04:05"), xmlrpc.client.Binary(b"\x00")),
    ({"a": [{"b": "x" * 3}] * 2},),
    ([[[["deep"]]]] * 40,),
    (["nested " * 3] * 3, {"k": {"k": {"k": None}}}),
])
def test_xmlrpc_dumps_of_other_values_matches_the_stdlib(params):
    assert xmlrpc_dumps(params, "m", allow_none=True) == xmlrpc.client.dumps(params, "m",
                                                                             allow_none=True)


def test_xmlrpc_dumps_of_a_fault_matches_the_stdlib():
    fault = xmlrpc.client.Fault(1, "no <such> & method")
    assert xmlrpc_dumps(fault, methodresponse=True) == xmlrpc.client.dumps(fault, methodresponse=True)


def test_xmlrpc_dumps_refuses_recursive_values_as_the_stdlib_does():
    value = []
    value.append(value)
    with pytest.raises(TypeError):
        xmlrpc_dumps((value,), "m")


def test_xmlrpc_dumps_writes_deep_values_as_the_stdlib_does():
    value = "x"
    for _ in range(MAX_XMLRPC_DEPTH + 5):
        value = [value]
    assert xmlrpc_dumps((value,), "m") == xmlrpc.client.dumps((value,), "m")
