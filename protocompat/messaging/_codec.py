"""The messaging frame codec: bytes to messages and back, no I/O.

A frame is ``protoheader | JSON header | content``: a 2-byte big-endian
length of the JSON header, the header (``json.dumps(..., ensure_ascii=False)``
in UTF-8, keys ``byteorder``, ``content-type``, ``content-encoding``,
``content-length``, ``message-type`` and then the extra keys of the message
type) and the content (JSON, or raw bytes).

:class:`MessageManager` is clever-show's class: one incoming message decoded
step by step (``income_raw``, ``process_message()``), plus the frame encoders.
Its :meth:`~MessageManager.feed` makes it a stream decoder as well: bytes in,
the list of completed messages out, with every size and depth bounded.
"""

import codecs
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from ._headers import HeaderCache
from ._json import MAX_JSON_DEPTH, encode_str, json_decode, json_encode, json_text

#: Largest content a received frame may announce (``content-length``), for any content type.
MAX_CONTENT_LENGTH = 64 * 1024 * 1024
#: Largest JSON content a received frame may announce; JSON is decoded in memory.
MAX_JSON_CONTENT_LENGTH = 1024 * 1024
# Bytes of the fixed-length protoheader (``struct ">H"``).
_PROTOHEADER_LENGTH = 2
# Largest JSON header the protoheader can announce.
_MAX_HEADER_LENGTH = 0xFFFF
# Headers every frame must carry.
_REQUIRED_HEADERS = ("byteorder", "content-length", "content-type", "content-encoding", "message-type")
_STANDARD_HEADERS = frozenset(_REQUIRED_HEADERS)

# A content sink: ``write(bytes)``, ``finish() -> content`` and ``discard()``.
ContentSink = Any


class FrameError(ValueError):
    """A received frame breaks the format or a limit; the connection cannot go on."""


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
            key_text = ", " + encode_str(key) + ": "
        if type(value) is str:
            parts.append(key_text + encode_str(value))
        elif type(value) is int:
            parts.append(key_text + int.__repr__(value))
        else:
            return None
    parts.append("}")
    return "".join(parts)


def _header_head(content_type: str, content_encoding: str) -> str:
    return ('{"byteorder": %s, "content-type": %s, "content-encoding": %s, "content-length": '
            % (encode_str(sys.byteorder), encode_str(content_type), encode_str(content_encoding)))


def _header_tail(message_type: str) -> str:
    return ', "message-type": ' + encode_str(message_type)


# Header pieces of the usual frames, built once.
_HEADER_HEADS = {(content_type, "utf-8"): _header_head(content_type, "utf-8")
                 for content_type in ("json", "binary")}
_HEADER_TAILS = {message_type: _header_tail(message_type)
                 for message_type in ("message", "request", "response")}
_EXTRA_KEY_TEXTS = {key: ", " + encode_str(key) + ": "
                    for key in ("action", "filepath", "requested_value", "request_id")}
_JSON_HEAD = _HEADER_HEADS[("json", "utf-8")]
_REQUEST_ID_TEXT = _EXTRA_KEY_TEXTS["request_id"]
_REQUEST_TAIL = _HEADER_TAILS["request"] + "}"
# The extra header key that names an action message and a response.
_NAME_KEYS = {"message": "action", "response": "requested_value"}
# The header text after the content length up to the name, by message type and name; the
# names an application sends are few, and each cache stops growing at this many.
_NAMED_TAILS: Dict[str, Dict[str, str]] = {message_type: {} for message_type in _NAME_KEYS}
_MAX_CACHED_NAMES = 1024
# Received headers, decoded once per shape (shared by every connection).
_HEADERS = HeaderCache()


def _named_header_text(content_length: int, message_type: str, name: str) -> str:
    """The start of the JSON header of an action (``"message"``) or a ``"response"`` named ``name``."""
    tails = _NAMED_TAILS[message_type]
    tail = tails.get(name)
    if tail is None:
        tail = (_HEADER_TAILS[message_type] + _EXTRA_KEY_TEXTS[_NAME_KEYS[message_type]]
                + encode_str(name))
        if len(tails) < _MAX_CACHED_NAMES:
            tails[name] = tail
    return _JSON_HEAD + int.__repr__(content_length) + tail


def _frame(header_text: str, content: bytes) -> Optional[bytes]:
    """Protoheader, header and content; None if the header is too long for the protoheader."""
    header = header_text.encode("utf-8")
    if len(header) > _MAX_HEADER_LENGTH:
        return None
    return len(header).to_bytes(_PROTOHEADER_LENGTH, "big") + header + content




def encode_header(content_length: int, content_type: str, message_type: str,
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
        text = json_text(header)
    header_bytes = text.encode("utf-8")
    if len(header_bytes) > _MAX_HEADER_LENGTH:
        raise ValueError("JSON header of %d bytes does not fit the 2-byte protoheader (at most %d)"
                         % (len(header_bytes), _MAX_HEADER_LENGTH))
    return len(header_bytes).to_bytes(_PROTOHEADER_LENGTH, "big") + header_bytes


def _decode_content(header: Any, data: Union[bytes, bytearray], max_depth: Optional[int]) -> Any:
    """Decode JSON content with the header's encoding; keep anything else as bytes."""
    if header["content-type"] != "json":
        return data
    encoding = header["content-encoding"]
    try:
        if encoding != "utf-8":
            codecs.lookup(encoding)
        return json_decode(data, encoding, max_depth)
    except (LookupError, TypeError) as error:
        raise FrameError("Unknown content-encoding %r: %s" % (encoding, error)) from None
    except ValueError as error:  # UnicodeDecodeError included
        raise FrameError("JSON content is not valid %s JSON: %s" % (encoding, error)) from None


def _discard_all(messages: List["MessageManager"]) -> None:
    for message in messages:
        message.discard()


class MessageManager:
    """One incoming message, decoded incrementally; a stream decoder; the frame encoders.

    A frame has three parts: a 2-byte big-endian protoheader holding the
    length of the JSON header; the JSON header (``byteorder``,
    ``content-type``, ``content-encoding``, ``content-length``,
    ``message-type`` and extra keys for the message type); the content (JSON,
    or raw bytes for ``content-type`` other than ``"json"``).

    Two ways to decode:

    * as clever-show does, one message: append received bytes to
      :attr:`income_raw` (``message.income_raw += data``), then call
      :meth:`process_message`, which consumes what this message needs;
    * as a stream: ``messages = decoder.feed(data)`` returns every message the
      bytes complete (each a :class:`MessageManager` with :attr:`jsonheader`
      and :attr:`content`) and keeps the start of the next one.

    Attributes
    ----------
    jsonheader : dict or None
        The header, once it has been decoded.
    content : object or None
        The content, once the whole message has been decoded.
    max_content_length : int or None
        Largest accepted ``content-length`` of any content; None for no limit.
    max_json_content_length : int or None
        Largest accepted ``content-length`` of JSON content, which is decoded
        in memory; None for no limit other than :attr:`max_content_length`.
    max_json_depth : int or None
        Deepest accepted nesting of arrays and objects in the header and in
        JSON content, checked before decoding; None for no limit.
    content_sink : callable or None
        Called with the header of each frame whose content is not JSON; it
        may return a sink (an object with ``write(data)``, ``finish()`` which
        returns the message's content, and ``discard()``) to stream the
        content into instead of memory, return None to keep the content in
        memory, or raise :class:`ValueError` to refuse the frame.
    """

    max_content_length: Optional[int] = MAX_CONTENT_LENGTH
    max_json_content_length: Optional[int] = MAX_JSON_CONTENT_LENGTH
    max_json_depth: Optional[int] = MAX_JSON_DEPTH
    content_sink: Optional[Callable[[Any], Optional[ContentSink]]] = None

    def __init__(self) -> None:
        """Create an empty message: ``message = MessageManager()``."""
        self._raw = bytearray()
        self._header_length: Optional[int] = None
        self.jsonheader: Any = None
        self.content: Any = None
        self._complete = False
        self._sink: ContentSink = None  # receiving the content
        self._sink_left = 0
        self._sink_content: ContentSink = None  # produced the content

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

    @property
    def partial(self) -> bool:
        """True while part of a message has been received and the rest has not."""
        return not self._complete and (bool(self._raw) or self._header_length is not None)

    # -- encoders --------------------------------------------------------
    # The JSON helpers under their old names: ``json.dumps(obj, ensure_ascii=False)``
    # encoded, and decoding into ``OrderedDict`` objects.
    _json_encode = staticmethod(json_encode)
    _json_decode = staticmethod(json_decode)
    _create_header = staticmethod(encode_header)

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
        return encode_header(len(content_bytes), content_type, message_type,
                             content_encoding, additional_headers) + bytes(content_bytes)

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
        return cls.create_message(json_encode(contents), "json", "message",
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
        if cls is MessageManager and type(action) is str:  # the usual case, without the general path
            content = json_encode({"args": args, "kwargs": kwargs})
            data = _frame(_named_header_text(len(content), "message", action) + "}", content)
            if data is not None:
                return data
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
        content = json_encode({"requested_value": requested_value, "request_id": request_id,
                               "args": args, "kwargs": kwargs})
        if cls is MessageManager:  # the usual case, without the general path
            data = _frame(_JSON_HEAD + int.__repr__(len(content)) + _REQUEST_TAIL, content)
            if data is not None:
                return data
        return cls.create_message(content, "json", "request")

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
        if cls is MessageManager and not filetransfer and type(requested_value) is str \
                and type(request_id) is str:  # the usual case, without the general path
            content = json_encode({"value": value})
            data = _frame(_named_header_text(len(content), "response", requested_value)
                          + _REQUEST_ID_TEXT + encode_str(request_id) + "}", content)
            if data is not None:
                return data
        headers = {"requested_value": requested_value, "request_id": request_id}
        if filetransfer:
            return cls.create_message(value, "binary", "response", additional_headers=headers)
        return cls.create_message(json_encode({"value": value}), "json", "response",
                                  additional_headers=headers)

    # -- decoder ---------------------------------------------------------
    def process_message(self) -> None:
        """Consume as much of :attr:`income_raw` as this message needs.

        Fills :attr:`jsonheader`, then :attr:`content`; bytes of the next
        message stay in :attr:`income_raw`.

        Raises
        ------
        ValueError
            If the header is not JSON or lacks a required key, a limit is
            exceeded (``content-length`` over :attr:`max_content_length` or,
            for JSON, :attr:`max_json_content_length`; nesting deeper than
            :attr:`max_json_depth`), or JSON content cannot be decoded.
        """
        if self._complete:
            return
        raw = self._raw
        if self._header_length is None:
            if len(raw) < _PROTOHEADER_LENGTH:
                return
            self._header_length = int.from_bytes(raw[:_PROTOHEADER_LENGTH], "big")
            del raw[:_PROTOHEADER_LENGTH]
        if self.jsonheader is None:
            length = self._header_length
            if len(raw) < length:
                return
            header = self._read_header(raw[:length])
            del raw[:length]
            self._start_content(header)
        if self._sink is not None:
            self._stream_content()
            return
        length = self.jsonheader["content-length"]
        if len(raw) < length:
            return
        data = bytes(raw[:length])
        del raw[:length]
        self.content = _decode_content(self.jsonheader, data, self.max_json_depth)
        self._complete = True

    def feed(self, data: Union[bytes, bytearray]) -> List["MessageManager"]:
        """Decode received bytes; return the messages they complete, in order.

        The decoder keeps the start of a message that is not complete yet for
        the next call; any chunking of the same bytes gives the same messages.

        Parameters
        ----------
        data : bytes
            The bytes received next.

        Returns
        -------
        list of MessageManager
            The completed messages, each with :attr:`jsonheader` and
            :attr:`content` (possibly none).

        Raises
        ------
        ValueError
            As :meth:`process_message`. The messages completed by the same
            call are dropped (see :meth:`discard`), and the decoder cannot go
            on: call :meth:`reset` before feeding it again.
        """
        messages: List[MessageManager] = []
        try:
            while True:
                if not self._raw and self._header_length is None and not self._complete:
                    pos = self._decode_whole_frames(data, messages)
                    if pos == len(data) and self.jsonheader is None:
                        return messages
                    if pos:
                        data = data[pos:]
                if self._sink is not None and not self._raw:
                    data = self._stream_from(data)  # binary content straight into its sink
                else:  # a message in progress: through the buffer until it is complete
                    self._raw += data
                    self.process_message()
                    data = b""
                if not self._complete:
                    return messages
                messages.append(self._take_message())
                if self._raw:
                    data = bytes(self._raw)  # back to whole frames for the rest
                    self._raw = bytearray()
                if not data:
                    return messages
        except ValueError:
            _discard_all(messages)
            raise

    def _decode_whole_frames(self, data: Union[bytes, bytearray],
                             messages: List["MessageManager"]) -> int:
        """Decode whole JSON frames straight from ``data``; return the offset where they end.

        The common case, small frames arriving whole, without copying bytes into
        the buffer. A cut frame or a non-JSON content stops it, with that frame's
        header already read.
        """
        pos = 0
        end = len(data)
        max_depth = self.max_json_depth
        while end - pos >= _PROTOHEADER_LENGTH:
            start = pos + _PROTOHEADER_LENGTH
            header_end = start + ((data[pos] << 8) | data[pos + 1])
            if header_end > end:
                break
            header = self._read_header(data[start:header_end])
            content_end = header_end + header["content-length"]
            if content_end > end or header["content-type"] != "json":
                self._header_length = header_end - start
                self._start_content(header)
                return header_end
            message = MessageManager()
            message.jsonheader = header
            message.content = _decode_content(header, data[header_end:content_end], max_depth)
            message._complete = True
            messages.append(message)
            pos = content_end
        return pos

    def _read_header(self, raw: Union[bytes, bytearray]) -> Any:
        """Decode a header, check its keys and the content it announces against the limits."""
        try:
            header = _HEADERS.decode(raw, self.max_json_depth)
        except ValueError as error:  # UnicodeDecodeError included
            raise FrameError("JSON header is not valid UTF-8 JSON: %s" % error) from None
        if not isinstance(header, dict):
            raise FrameError("JSON header is not an object: %r" % (header,))
        if not _STANDARD_HEADERS <= header.keys():
            for name in _REQUIRED_HEADERS:
                if name not in header:
                    raise FrameError("Missing required header {}".format(name))
        length = header["content-length"]
        if type(length) is not int and (isinstance(length, bool) or not isinstance(length, int)):
            raise FrameError("Invalid content-length %r" % (length,))
        if length < 0:
            raise FrameError("Invalid content-length %r" % (length,))
        limit = self.max_content_length
        if limit is not None and length > limit:
            raise FrameError("content-length %d exceeds the maximum of %d bytes" % (length, limit))
        limit = self.max_json_content_length
        if limit is not None and length > limit and header["content-type"] == "json":
            raise FrameError("JSON content-length %d exceeds the maximum of %d bytes for JSON"
                             % (length, limit))
        return header

    def _start_content(self, header: Any) -> None:
        self.jsonheader = header
        if self.content_sink is not None and header["content-type"] != "json":
            self._sink = self.content_sink(header)
            self._sink_left = header["content-length"]

    def _stream_content(self) -> None:
        raw = self._raw
        take = min(len(raw), self._sink_left)
        if take:
            self._sink.write(bytes(raw[:take]))
            del raw[:take]
            self._sink_left -= take
        if self._sink_left == 0:
            self._finish_content()

    def _stream_from(self, data: Union[bytes, bytearray]) -> Union[bytes, bytearray]:
        """Write what the content in progress takes of ``data`` to its sink; return the rest."""
        left = self._sink_left
        if len(data) <= left:
            if data:
                self._sink.write(data if type(data) is bytes else bytes(data))
            rest = data[:0]
            left -= len(data)
        else:
            if left:
                self._sink.write(bytes(data[:left]))
            rest = data[left:]
            left = 0
        self._sink_left = left
        if left == 0:
            self._finish_content()
        return rest

    def _finish_content(self) -> None:
        sink, self._sink = self._sink, None
        self.content = sink.finish()
        self._sink_content = sink
        self._complete = True

    def _take_message(self) -> "MessageManager":
        """Move the completed message into a new object; this one starts the next."""
        message = MessageManager()
        message.jsonheader = self.jsonheader
        message.content = self.content
        message._complete = True
        message._sink_content = self._sink_content
        self._header_length = None
        self.jsonheader = None
        self.content = None
        self._complete = False
        self._sink_content = None
        return message

    def reset(self) -> None:
        """Forget buffered bytes and a partly received message (its sink is discarded)."""
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.discard()
        self._raw = bytearray()
        self._header_length = None
        self.jsonheader = None
        self.content = None
        self._complete = False
        self._sink_content = None

    def discard(self) -> None:
        """Release what a content sink holds for this message, which will not be handled."""
        sink, self._sink_content = self._sink_content, None
        if sink is not None:
            sink.discard()
