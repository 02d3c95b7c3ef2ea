"""The KATCP codec: escaping, :class:`Message` and :class:`MessageParser`.

Bytes in, messages out, and back; no I/O. Splitting received bytes into lines
is :mod:`katcp_compat._line_decoder`'s job. The public names are re-exported by
:mod:`katcp_compat.core`, where the original library has them.
"""

import numbers
import re
from typing import Any, Dict, Iterable, List, Optional, Set, Union

from ._errors import KatcpSyntaxError, KatcpTypeError

__all__ = ["Message", "MessageParser", "MAX_MSG_SIZE", "MAX_WRITE_BUFFER_SIZE",
           "escape_argument", "unescape_argument", "format_argument"]

#: Longest accepted line in bytes, without its end-of-line (as katcp's limit).
MAX_MSG_SIZE = 2 * 1024 * 1024
#: Most bytes of unsent output kept for one connection; past it katcp drops
#: the connection as too slow (its ``MAX_WRITE_BUFFER_SIZE``).
MAX_WRITE_BUFFER_SIZE = 2 * MAX_MSG_SIZE

#: Argument bytes shown by ``Message.__repr__`` and ``BadLine.__repr__``.
MAX_REPR_ARG = 1000


# --------------------------------------------------------------------------- escaping

_ESCAPE_LOOKUP: Dict[bytes, bytes] = {
    b"\\": b"\\",
    b"_": b" ",
    b"0": b"\0",
    b"n": b"\n",
    b"r": b"\r",
    b"e": b"\x1b",
    b"t": b"\t",
    b"@": b"",
}
_REVERSE_ESCAPE_LOOKUP: Dict[bytes, bytes] = {v: k for k, v in _ESCAPE_LOOKUP.items()}
_ESCAPE_RE = re.compile(rb"[\\ \0\n\r\x1b\t]")
_SPECIAL_RE = re.compile(rb"[\0\n\r\x1b\t ]")
_UNESCAPE_RE = re.compile(rb"\\(.?)", re.DOTALL)
_WHITESPACE_RE = re.compile(rb"[ \t]+")
# A line with none of these splits with bytes.split() (on spaces and tabs only)
# into arguments that need no unescaping: the common case, parsed fast.
_SLOW_LINE_RE = re.compile(rb"[\\\0\n\r\x1b\x0b\x0c]")
# ``$`` (not ``\Z``) as in the original parser: a name may end in one LF.
_NAME_RE = re.compile(rb"^(?P<name>[a-zA-Z][a-zA-Z0-9\-]*)(\[(?P<id>[0-9]+)\])?$")
_VALID_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]*$")
_EMPTY_ARG = b"\\@"
# The characters _ESCAPE_RE escapes, but for the space.
_ESCAPE_BUT_SPACE_RE = re.compile(rb"[\\\0\n\r\x1b\t]")
#: Message names already found valid (a set kept small: names are few).
_KNOWN_NAMES: Set[str] = set()
_MAX_KNOWN_NAMES = 1024


def _escape_match(match: "re.Match[bytes]") -> bytes:
    return b"\\" + _REVERSE_ESCAPE_LOOKUP[match.group()]


def _unescape_match(match: "re.Match[bytes]") -> bytes:
    char = match.group(1)
    try:
        return _ESCAPE_LOOKUP[char]
    except KeyError:
        if not char:
            raise KatcpSyntaxError("Escape slash at end of argument.") from None
        raise KatcpSyntaxError("Invalid escape character %r." % (char,)) from None


def escape_argument(arg: bytes) -> bytes:
    """Escape one argument for the wire.

    Parameters
    ----------
    arg : bytes
        The raw argument.

    Returns
    -------
    escaped : bytes
        The argument with backslash, space, NUL, LF, CR, ESC and TAB escaped;
        the empty argument becomes ``\\@``.
    """
    return _ESCAPE_RE.sub(_escape_match, arg) or _EMPTY_ARG


def unescape_argument(arg: bytes) -> bytes:
    """Undo :func:`escape_argument` for one argument received on the wire.

    Parameters
    ----------
    arg : bytes
        The escaped argument (no whitespace inside).

    Returns
    -------
    raw : bytes
        The raw argument.

    Raises
    ------
    KatcpSyntaxError
        If the argument holds an unescaped special character, an unknown
        escape or a lone backslash at its end.
    """
    match = _SPECIAL_RE.search(arg)
    if match:
        raise KatcpSyntaxError("Un-escaped special %r." % (match.group(),))
    if b"\\" not in arg:
        return arg
    return _UNESCAPE_RE.sub(_unescape_match, arg)


def _encode_text(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def _format_arguments(arguments: Iterable[Any]) -> List[bytes]:
    """:func:`format_argument` of each, with bytes and str handled inline."""
    formatted = []
    for arg in arguments:
        cls = arg.__class__
        if cls is bytes:
            formatted.append(arg)
        elif cls is str:
            formatted.append(arg.encode("utf-8", "replace"))
        else:
            formatted.append(format_argument(arg))
    return formatted


def format_argument(arg: Any) -> bytes:
    """Format one message argument as bytes, as :class:`Message` does.

    Parameters
    ----------
    arg : object
        ``bytes`` pass unchanged, ``str`` is UTF-8 encoded, ``bool`` gives
        ``1``/``0``, integers ``%d``, floats ``repr()``, anything else
        ``str()`` encoded as UTF-8.

    Returns
    -------
    formatted : bytes
        The unescaped argument.
    """
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return _encode_text(arg)
    if isinstance(arg, bool):
        return b"1" if arg else b"0"
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode("ascii")
    if isinstance(arg, (bytearray, memoryview)):
        return bytes(arg)
    # numbers.Integral / numbers.Real cover numpy scalars; checked late as they are slow.
    if isinstance(arg, numbers.Integral):
        return b"%d" % int(arg)
    if isinstance(arg, numbers.Real):
        return repr(float(arg)).encode("ascii")
    return _encode_text(str(arg))


# --------------------------------------------------------------------------- Message

class Message:
    """One KATCP message: a request, a reply or an inform.

    Parameters
    ----------
    mtype : int
        :attr:`REQUEST`, :attr:`REPLY` or :attr:`INFORM`.
    name : str
        The message name: an ASCII letter followed by letters, digits and
        dashes.
    arguments : sequence of objects, optional
        The arguments; each is stored as bytes (see :func:`format_argument`).
    mid : str, bytes, int or None, optional
        The message identifier (digits only), or None.

    Raises
    ------
    KatcpSyntaxError
        If the type, name or message identifier is invalid.

    Attributes
    ----------
    mtype : int
        The message type.
    name : str
        The message name.
    arguments : list of bytes
        The unescaped arguments.
    mid : bytes or None
        The message identifier.

    Notes
    -----
    ``bytes(msg)`` is the escaped wire line without end-of-line and
    ``str(msg)`` the same line decoded as UTF-8. Messages compare equal when
    type, name, arguments and identifier are equal.
    """

    REQUEST, REPLY, INFORM = range(3)
    OK, FAIL, INVALID = b"ok", b"fail", b"invalid"

    TYPE_NAMES = {REQUEST: "REQUEST", REPLY: "REPLY", INFORM: "INFORM"}
    TYPE_SYMBOLS = {REQUEST: b"?", REPLY: b"!", INFORM: b"#"}
    TYPE_SYMBOL_LOOKUP = {v: k for k, v in TYPE_SYMBOLS.items()}
    ESCAPE_LOOKUP = dict(_ESCAPE_LOOKUP)
    REVERSE_ESCAPE_LOOKUP = dict(_REVERSE_ESCAPE_LOOKUP)
    ESCAPE_RE = _ESCAPE_RE

    __slots__ = ["mtype", "name", "mid", "arguments"]

    def __init__(self, mtype: int, name: str, arguments: Optional[Iterable[Any]] = None,
                 mid: Union[str, bytes, int, None] = None) -> None:
        self.mtype = mtype
        self.name = name
        if mid is None:
            self.mid: Optional[bytes] = None
        elif isinstance(mid, bytes):
            self.mid = mid
        else:
            self.mid = str(mid).encode("ascii", "replace")
        self.arguments: List[bytes] = [] if arguments is None else _format_arguments(arguments)
        if mtype not in self.TYPE_SYMBOLS:
            raise KatcpSyntaxError("Invalid command type %r." % (mtype,))
        if self.mid is not None and not self.mid.isdigit():
            raise KatcpSyntaxError("Invalid message id %r." % (mid,))
        if name.__class__ is str and name in _KNOWN_NAMES:
            return
        if not name:
            raise KatcpSyntaxError("Command missing command name.")
        if isinstance(name, bytes):
            self.name = name = name.decode("ascii", "replace")
        if not isinstance(name, str) or not _VALID_NAME_RE.fullmatch(name):
            plain = str(name).replace("-", "")
            if plain.isascii() and plain.isalnum():
                raise KatcpSyntaxError("Command name should start with an "
                                       "alphabetic character (got %r)." % (name,))
            raise KatcpSyntaxError("Command name should consist only of "
                                   "alphanumeric characters and dashes (got %r)." % (name,))
        if name.__class__ is str and len(_KNOWN_NAMES) < _MAX_KNOWN_NAMES:
            _KNOWN_NAMES.add(name)

    def format_argument(self, arg: Any) -> bytes:
        """Format one argument as bytes.

        Parameters
        ----------
        arg : object
            The argument (see :func:`format_argument`).

        Returns
        -------
        formatted : bytes
            The unescaped argument bytes.
        """
        return format_argument(arg)

    def copy(self) -> "Message":
        """Return a shallow copy of the message and its arguments.

        Returns
        -------
        msg : Message
            A new message with the same type, name and arguments. As in the
            original, the message identifier is not copied.
        """
        return Message(self.mtype, self.name, self.arguments)

    def __bytes__(self) -> bytes:
        """Return the escaped wire line without end-of-line."""
        head = self.TYPE_SYMBOLS[self.mtype] + self.name.encode("ascii")
        if self.mid is not None:
            head += b"[%s]" % self.mid
        arguments = self.arguments
        if not arguments:
            return head
        joined = b" ".join(arguments)
        if (joined.count(b" ") == len(arguments) - 1 and b"" not in arguments
                and _ESCAPE_BUT_SPACE_RE.search(joined) is None):
            return head + b" " + joined  # nothing to escape (the usual case)
        return head + b" " + b" ".join(_ESCAPE_RE.sub(_escape_match, arg) or _EMPTY_ARG
                                       for arg in arguments)

    def __str__(self) -> str:
        """Return the wire line decoded as UTF-8 (invalid bytes raise)."""
        return self.__bytes__().decode("utf-8")

    def __repr__(self) -> str:
        tp = self.TYPE_NAMES[self.mtype].lower()
        if self.arguments:
            shown = []
            for arg in self.arguments:
                escaped = _ESCAPE_RE.sub(_escape_match, arg)
                if len(escaped) > MAX_REPR_ARG:
                    escaped = escaped[:MAX_REPR_ARG] + b"..."
                shown.append(str(escaped))
            args = "(" + ", ".join(shown) + ")"
        else:
            args = ""
        return "<Message %s %s %s>" % (tp, self.name, args)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.mtype == other.mtype and self.name == other.name
                and self.mid == other.mid and self.arguments == other.arguments)

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None  # type: ignore[assignment]  # mutable, like the original

    def reply_ok(self) -> bool:
        """Return True if this is a reply whose first argument is ``ok``."""
        return bool(self.mtype == self.REPLY and self.arguments
                    and self.arguments[0] == self.OK)

    @staticmethod
    def _pop_mid(kwargs: Dict[str, Any]) -> Any:
        mid = kwargs.pop("mid", None)
        if kwargs:
            raise TypeError("Invalid keyword argument(s): %r" % kwargs)
        return mid

    @classmethod
    def request(cls, name: str, *args: Any, **kwargs: Any) -> "Message":
        """Create a request message.

        Parameters
        ----------
        name : str
            The message name.
        *args : objects
            The arguments.
        mid : str, bytes, int or None, optional (keyword only)
            The message identifier.

        Returns
        -------
        msg : Message
            The request.

        Raises
        ------
        TypeError
            For a keyword argument other than ``mid``.
        """
        return cls(cls.REQUEST, name, args, cls._pop_mid(kwargs))

    @classmethod
    def reply(cls, name: str, *args: Any, **kwargs: Any) -> "Message":
        """Create a reply message.

        Parameters
        ----------
        name : str
            The message name.
        *args : objects
            The arguments (usually ``"ok"``/``"fail"`` first).
        mid : str, bytes, int or None, optional (keyword only)
            The message identifier.

        Returns
        -------
        msg : Message
            The reply.

        Raises
        ------
        TypeError
            For a keyword argument other than ``mid``.
        """
        return cls(cls.REPLY, name, args, cls._pop_mid(kwargs))

    @classmethod
    def inform(cls, name: str, *args: Any, **kwargs: Any) -> "Message":
        """Create an inform message.

        Parameters
        ----------
        name : str
            The message name.
        *args : objects
            The arguments.
        mid : str, bytes, int or None, optional (keyword only)
            The message identifier.

        Returns
        -------
        msg : Message
            The inform.

        Raises
        ------
        TypeError
            For a keyword argument other than ``mid``.
        """
        return cls(cls.INFORM, name, args, cls._pop_mid(kwargs))

    @classmethod
    def reply_to_request(cls, req_msg: "Message", *args: Any) -> "Message":
        """Create the reply to a request, copying its name and identifier.

        Parameters
        ----------
        req_msg : Message
            The request being answered.
        *args : objects
            The reply arguments.

        Returns
        -------
        msg : Message
            The reply.
        """
        return cls(cls.REPLY, req_msg.name, args, req_msg.mid)

    @classmethod
    def reply_inform(cls, req_msg: "Message", *args: Any) -> "Message":
        """Create an inform belonging to a request, copying name and identifier.

        Parameters
        ----------
        req_msg : Message
            The request the inform belongs to.
        *args : objects
            The inform arguments.

        Returns
        -------
        msg : Message
            The inform.
        """
        return cls(cls.INFORM, req_msg.name, args, req_msg.mid)


class MessageParser:
    """Parses received lines into :class:`Message` objects.

    The parser keeps no state between lines, so one instance may be shared
    by threads.
    """

    TYPE_SYMBOL_LOOKUP = Message.TYPE_SYMBOL_LOOKUP
    ESCAPE_LOOKUP = Message.ESCAPE_LOOKUP
    SPECIAL_RE = _SPECIAL_RE
    UNESCAPE_RE = _UNESCAPE_RE
    WHITESPACE_RE = _WHITESPACE_RE
    NAME_RE = _NAME_RE

    def parse(self, line: bytes) -> Message:
        """Parse one line into a message.

        Parameters
        ----------
        line : bytes
            The line, without its terminating LF or CR. Whitespace at the
            end is ignored.

        Returns
        -------
        msg : Message
            The message.

        Raises
        ------
        KatcpSyntaxError
            If the line is empty, has a bad type character, a bad name or
            message identifier, or a badly escaped argument.
        KatcpTypeError
            If ``line`` is not bytes.
        """
        if not line:
            raise KatcpSyntaxError("Empty message received.")
        if not isinstance(line, bytes):
            raise KatcpTypeError("Line type must be bytes - not {}".format(type(line)))
        type_char = line[:1]
        mtype = self.TYPE_SYMBOL_LOOKUP.get(type_char)
        if mtype is None:
            raise KatcpSyntaxError(
                "Bad type character %r." % (type_char.decode("latin-1"),))
        if _SLOW_LINE_RE.search(line) is None:
            parts = line.split()
            arguments = parts[1:]
        else:
            parts = _WHITESPACE_RE.split(line)
            if not parts[-1]:
                del parts[-1]
            arguments = [unescape_argument(x) for x in parts[1:]]
        match = _NAME_RE.match(parts[0][1:])
        if not match:
            raise KatcpSyntaxError("Bad message name (and possibly id) %r." % (
                parts[0][1:].decode("utf-8", "replace"),))
        msg = Message.__new__(Message)
        msg.mtype = mtype
        msg.name = match.group("name").decode("ascii")
        msg.mid = match.group("id")
        msg.arguments = arguments
        return msg
