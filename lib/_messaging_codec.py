"""The messaging frame codec: bytes to messages and back, no I/O.

A frame is ``protoheader | JSON header | content``: a 2-byte big-endian
length of the JSON header, the header (``json.dumps(..., ensure_ascii=False)``
in UTF-8, keys ``byteorder``, ``content-type``, ``content-encoding``,
``content-length``, ``message-type`` and then the extra keys of the message
type) and the content (JSON, or raw bytes).

Part of ``messaging``, which re-exports every name used from here; import it
from there.
"""

import codecs
import collections
import importlib
import json
import json.encoder
import sys
from typing import Any, Callable, Dict, Iterable, Optional, Union

#: Largest content a received frame may announce (``content-length``).
MAX_CONTENT_LENGTH = 64 * 1024 * 1024
# Bytes of the fixed-length protoheader (``struct ">H"``).
_PROTOHEADER_LENGTH = 2
# Headers every frame must carry.
_REQUIRED_HEADERS = ("byteorder", "content-length", "content-type", "content-encoding", "message-type")
# The action and request name used for file transfers.
_FILETRANSFER = "filetransfer"

_STANDARD_HEADERS = frozenset(_REQUIRED_HEADERS)

_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False)
_JSON_DECODER = json.JSONDecoder(object_pairs_hook=collections.OrderedDict)
_scan_once = _JSON_DECODER.scan_once
_encode_str = json.encoder.encode_basestring  # what ensure_ascii=False uses for strings
# CPython's C encoder, used the way JSONEncoder.iterencode uses it; it is only an
# implementation detail, so it is checked against json.dumps once and dropped if it differs.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)


def _fast_encoder_works() -> bool:
    probe = {"a": [1, 2.5, None, True, "\u00e9\n"], "b": {}}
    try:
        text = "".join(_c_make_encoder({}, _JSON_ENCODER.default, _encode_str, None,
                                       ": ", ", ", False, False, True)(probe, 0))
    except Exception:
        return False
    return text == json.dumps(probe, ensure_ascii=False)


if _c_make_encoder is not None and not _fast_encoder_works():
    _c_make_encoder = None


def _import_sibling(name: str) -> Any:
    """Import a module of ``lib/`` the way this module itself was imported."""
    if __package__:  # ``lib.X`` (also ``python -m lib.messaging``)
        names = [__package__ + "." + name, name]
    else:  # top-level ``X`` with lib/ on sys.path
        names = [name, "lib." + name]
    try:
        return importlib.import_module(names[0])
    except ImportError:
        return importlib.import_module(names[1])


class _FrameError(ValueError):
    """A received frame breaks the format; the connection cannot go on."""


def _json_text(obj: Any) -> str:
    """``json.dumps(obj, ensure_ascii=False)``, without the per-call setup of the encoder."""
    if type(obj) is str:
        return _encode_str(obj)
    if _c_make_encoder is None:
        return _JSON_ENCODER.encode(obj)
    # The arguments JSONEncoder.iterencode passes for a one-shot, unindented encode.
    chunks = _c_make_encoder({}, _JSON_ENCODER.default, _encode_str, None, ": ", ", ",
                             False, False, True)(obj, 0)
    return "".join(chunks)


def _json_encode(obj: Any, encoding: str = "utf-8") -> bytes:
    return _json_text(obj).encode(encoding)


def _json_decode(data: Union[bytes, bytearray], encoding: str = "utf-8") -> Any:
    text = data.decode(encoding)
    try:
        obj, end = _scan_once(text, 0)
    except (StopIteration, ValueError):
        pass  # leading whitespace or bad JSON: the full decoder decides (and words the error)
    else:
        if end == len(text):
            return obj
    return _JSON_DECODER.decode(text)


def _header_fields_text(content_length: int, content_type: str, message_type: str,
                        content_encoding: str, additional_headers: Any) -> Optional[str]:
    """The JSON header text built directly, or None when a field needs the general encoder.

    Gives exactly what encoding the header dict gives: the five standard keys
    in order, then the extra ones, ``", "`` and ``": "`` separators.
    """
    if type(content_type) is not str or type(message_type) is not str \
            or type(content_encoding) is not str or type(content_length) is not int:
        return None
    head = _HEADER_HEADS.get((content_type, content_encoding))
    if head is None:
        head = _header_head(content_type, content_encoding)
    tail = _HEADER_TAILS.get(message_type)
    if tail is None:
        tail = _header_tail(message_type)
    if not additional_headers:
        return head + int.__repr__(content_length) + tail + "}"
    if type(additional_headers) is not dict:
        return None
    parts = [head, int.__repr__(content_length), tail]
    for key, value in additional_headers.items():
        key_text = _EXTRA_KEY_TEXTS.get(key)
        if key_text is None:
            if type(key) is not str or key in _STANDARD_HEADERS:
                return None  # an override keeps the standard key's place: general path
            key_text = ", " + _encode_str(key) + ": "
        if type(value) is str:
            parts.append(key_text + _encode_str(value))
        elif type(value) is int:
            parts.append(key_text + int.__repr__(value))
        else:
            return None
    parts.append("}")
    return "".join(parts)


def _header_head(content_type: str, content_encoding: str) -> str:
    return ('{"byteorder": %s, "content-type": %s, "content-encoding": %s, "content-length": '
            % (_encode_str(sys.byteorder), _encode_str(content_type), _encode_str(content_encoding)))


def _header_tail(message_type: str) -> str:
    return ', "message-type": ' + _encode_str(message_type)


# Header pieces of the usual frames, built once.
_HEADER_HEADS = {(content_type, "utf-8"): _header_head(content_type, "utf-8")
                 for content_type in ("json", "binary")}
_HEADER_TAILS = {message_type: _header_tail(message_type)
                 for message_type in ("message", "request", "response")}
_EXTRA_KEY_TEXTS = {key: ", " + _encode_str(key) + ": "
                    for key in ("action", "filepath", "requested_value", "request_id")}


def _decode_header(raw: Union[bytes, bytearray], max_content_length: Optional[int]) -> Any:
    """Parse and check a JSON header; raise :class:`_FrameError` if it is bad."""
    try:
        header = _json_decode(raw, "utf-8")
    except (UnicodeDecodeError, ValueError) as error:
        raise _FrameError("JSON header is not valid UTF-8 JSON: %s" % error) from None
    if not isinstance(header, dict):
        raise _FrameError("JSON header is not an object: %r" % (header,))
    if not _STANDARD_HEADERS <= header.keys():
        for name in _REQUIRED_HEADERS:
            if name not in header:
                raise _FrameError("Missing required header {}".format(name))
    length = header["content-length"]
    if type(length) is not int and (isinstance(length, bool) or not isinstance(length, int)):
        raise _FrameError("Invalid content-length %r" % (length,))
    if length < 0:
        raise _FrameError("Invalid content-length %r" % (length,))
    if max_content_length is not None and length > max_content_length:
        raise _FrameError("content-length %d exceeds the maximum of %d bytes"
                          % (length, max_content_length))
    return header


def _decode_content(header: Any, data: bytes) -> Any:
    """Decode JSON content with the header's encoding; keep anything else as bytes."""
    if header["content-type"] != "json":
        return data
    encoding = header["content-encoding"]
    try:
        if encoding != "utf-8":
            codecs.lookup(encoding)
        return _json_decode(data, encoding)
    except (LookupError, TypeError) as error:
        raise _FrameError("Unknown content-encoding %r: %s" % (encoding, error)) from None
    except (UnicodeDecodeError, ValueError) as error:
        raise _FrameError("JSON content is not valid %s JSON: %s" % (encoding, error)) from None


class MessageManager:
    """One incoming message, decoded incrementally, plus the frame encoders.

    A frame has three parts: a 2-byte big-endian protoheader holding the
    length of the JSON header; the JSON header (``byteorder``,
    ``content-type``, ``content-encoding``, ``content-length``,
    ``message-type`` and extra keys for the message type); the content (JSON,
    or raw bytes for ``content-type`` other than ``"json"``).

    Received bytes go to :attr:`income_raw` (``message.income_raw += data``),
    then :meth:`process_message` consumes what this message needs.

    Attributes
    ----------
    jsonheader : dict or None
        The header, once it has been decoded.
    content : object or None
        The content, once the whole message has been decoded.
    max_content_length : int or None
        Largest accepted ``content-length``; None for no limit.
    """

    max_content_length: Optional[int] = MAX_CONTENT_LENGTH

    def __init__(self) -> None:
        """Create an empty message: ``message = MessageManager()``."""
        self._raw = bytearray()
        self._jsonheader_len: Optional[int] = None
        self.jsonheader: Optional[Any] = None
        self.content: Any = None
        self._complete = False
        self._sink: Any = None
        self._sink_left = 0
        # Called with the header once decoded; may return a sink object with
        # write(bytes) and finish() -> content, to stream the content.
        self._on_header: Optional[Callable[[Any], Any]] = None

    @property
    def income_raw(self) -> bytes:
        """Received bytes not consumed yet (bytes after the message stay here)."""
        return bytes(self._raw)

    @income_raw.setter
    def income_raw(self, value: Union[bytes, bytearray]) -> None:
        self._raw = bytearray(value)

    @property
    def complete(self) -> bool:
        """True once header and content have been decoded (even a JSON ``null``)."""
        return self._complete

    # -- encoders --------------------------------------------------------
    # The JSON helpers under their old names: ``json.dumps(obj, ensure_ascii=False)``
    # encoded, and decoding into ``OrderedDict`` objects.
    _json_encode = staticmethod(_json_encode)
    _json_decode = staticmethod(_json_decode)

    @classmethod
    def create_message(cls, content_bytes: bytes, content_type: str, message_type: str,
                       content_encoding: str = "utf-8",
                       additional_headers: Optional[Dict[str, Any]] = None) -> bytes:
        """Return one encoded frame.

        Parameters
        ----------
        content_bytes : bytes
            The content.
        content_type : str
            ``"json"`` or ``"binary"``.
        message_type : str
            ``"message"``, ``"request"`` or ``"response"``.
        content_encoding : str, optional
            Encoding of JSON content, written as is (also for binary).
        additional_headers : dict, optional
            Keys added to the header after the standard ones.

        Returns
        -------
        bytes
            The frame.
        """
        return cls._create_header(len(content_bytes), content_type, message_type,
                                  content_encoding, additional_headers) + bytes(content_bytes)

    @staticmethod
    def _create_header(content_length: int, content_type: str, message_type: str,
                       content_encoding: str = "utf-8",
                       additional_headers: Optional[Dict[str, Any]] = None) -> bytes:
        """Return protoheader and JSON header for a content of ``content_length`` bytes."""
        text = _header_fields_text(content_length, content_type, message_type,
                                   content_encoding, additional_headers)
        if text is None:
            header = {
                "byteorder": sys.byteorder,
                "content-type": content_type,
                "content-encoding": content_encoding,
                "content-length": content_length,
                "message-type": message_type,
            }
            if additional_headers:
                header.update(additional_headers)
            text = _json_text(header)
        header_bytes = text.encode("utf-8")
        if len(header_bytes) > 0xFFFF:
            raise ValueError("JSON header of %d bytes does not fit the 2-byte protoheader"
                             % len(header_bytes))
        return len(header_bytes).to_bytes(_PROTOHEADER_LENGTH, "big") + header_bytes

    @classmethod
    def create_json_message(cls, contents: Any,
                            additional_headers: Optional[Dict[str, Any]] = None) -> bytes:
        """Return a ``message`` frame with JSON content.

        Parameters
        ----------
        contents : object
            Any JSON-serialisable object.
        additional_headers : dict, optional
            Extra header keys.

        Returns
        -------
        bytes
            The frame.
        """
        return cls.create_message(_json_encode(contents), "json", "message",
                                  additional_headers=additional_headers)

    @classmethod
    def create_action_message(cls, action: str, args: Iterable[Any] = (),
                              kwargs: Optional[Dict[str, Any]] = None) -> bytes:
        """Return an action message: header ``action``, content ``{"args", "kwargs"}``.

        Parameters
        ----------
        action : str
            Name of the action, matched by :func:`message_callback` on the peer.
        args : tuple, optional
            Positional arguments (sent as a JSON list).
        kwargs : dict, optional
            Keyword arguments.

        Returns
        -------
        bytes
            The frame.
        """
        if kwargs is None:
            kwargs = {}
        return cls.create_json_message({"args": args, "kwargs": kwargs}, {"action": action})

    @classmethod
    def create_request(cls, requested_value: str, request_id: str, args: Iterable[Any] = (),
                       kwargs: Optional[Dict[str, Any]] = None) -> bytes:
        """Return a request; its name and id travel in the content.

        Parameters
        ----------
        requested_value : str
            Name matched by :func:`request_callback` on the peer.
        request_id : str
            Id the response will carry.
        args : tuple, optional
            Positional arguments.
        kwargs : dict, optional
            Keyword arguments.

        Returns
        -------
        bytes
            The frame.
        """
        if kwargs is None:
            kwargs = {}
        contents = {"requested_value": requested_value, "request_id": request_id,
                    "args": args, "kwargs": kwargs}
        return cls.create_message(_json_encode(contents), "json", "request")

    @classmethod
    def create_response(cls, requested_value: str, request_id: str, value: Any,
                        filetransfer: bool = False) -> bytes:
        """Return a response; its name and id travel in the header.

        Parameters
        ----------
        requested_value : str
            Name of the request answered.
        request_id : str
            Id of the request answered.
        value : object
            The value (content ``{"value": value}``), or file bytes.
        filetransfer : bool, optional
            If True, ``value`` is sent as raw binary content.

        Returns
        -------
        bytes
            The frame.
        """
        headers = {"requested_value": requested_value, "request_id": request_id}
        if filetransfer:
            return cls.create_message(value, "binary", "response", additional_headers=headers)
        return cls.create_message(_json_encode({"value": value}), "json", "response",
                                  additional_headers=headers)

    # -- decoder ---------------------------------------------------------
    def process_message(self) -> None:
        """Consume as much of :attr:`income_raw` as this message needs.

        Fills :attr:`jsonheader`, then :attr:`content`; bytes of the next
        message stay in :attr:`income_raw`.

        Raises
        ------
        ValueError
            If the header is not JSON, lacks a required key, or announces a
            content over :attr:`max_content_length`, or JSON content cannot
            be decoded.
        """
        if self._complete:
            return
        raw = self._raw
        if self._jsonheader_len is None:
            if len(raw) < _PROTOHEADER_LENGTH:
                return
            self._jsonheader_len = int.from_bytes(raw[:_PROTOHEADER_LENGTH], "big")
            del raw[:_PROTOHEADER_LENGTH]
        if self.jsonheader is None:
            length = self._jsonheader_len
            if len(raw) < length:
                return
            header = _decode_header(raw[:length], self.max_content_length)
            del raw[:length]
            self.jsonheader = header
            if self._on_header is not None:
                self._sink = self._on_header(header)
                self._sink_left = header["content-length"]
        if self._sink is not None:
            self._stream_content()
            return
        length = self.jsonheader["content-length"]
        if len(raw) < length:
            return
        data = bytes(raw[:length])
        del raw[:length]
        self.content = _decode_content(self.jsonheader, data)
        self._complete = True

    def _stream_content(self) -> None:
        raw = self._raw
        take = min(len(raw), self._sink_left)
        if take:
            self._sink.write(bytes(raw[:take]))
            del raw[:take]
            self._sink_left -= take
        if self._sink_left == 0:
            self.content = self._sink.finish()
            self._sink = None
            self._complete = True

    def _abort(self) -> None:
        """Drop a half-received message (releasing a content sink)."""
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.discard()
