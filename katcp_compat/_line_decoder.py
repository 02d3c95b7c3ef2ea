"""Framing of KATCP: received bytes split into lines, incrementally and bounded.

No I/O: the owner feeds what it read. Re-exported by :mod:`katcp_compat.core`.
"""

from typing import Any, List, Optional

from ._codec import MAX_MSG_SIZE, MAX_REPR_ARG, MessageParser
from ._errors import KatcpLineTooLong, KatcpSyntaxError

__all__ = ["LineDecoder", "BadLine"]

_LF = b"\n"
_CR = b"\r"


class BadLine:
    """A received line that is not a valid KATCP message.

    :class:`LineDecoder` returns one in place of the message; katcp answers
    such a line with a ``#log error`` inform and reads on.

    Parameters
    ----------
    line : bytes
        The line, without its end-of-line.
    error : KatcpSyntaxError
        Why it did not parse (with its traceback).

    Attributes
    ----------
    line : bytes
    error : KatcpSyntaxError
    """

    __slots__ = ("line", "error")

    def __init__(self, line: bytes, error: KatcpSyntaxError) -> None:
        self.line = line
        self.error = error

    def __repr__(self) -> str:
        return "<BadLine %r: %s>" % (self.line[:MAX_REPR_ARG], self.error)


class LineDecoder:
    r"""Splits received bytes into KATCP lines, incrementally and bounded.

    A line ends with LF or CR (so CR LF ends a line and leaves an empty one);
    empty lines are dropped, as katcp drops them. Bytes of an unfinished line
    are kept until its end arrives. No I/O: the owner feeds what it read.

    Parameters
    ----------
    max_line : int, optional
        Longest line accepted, in bytes without its end-of-line.
    parser : MessageParser, optional
        Without one, :meth:`feed` returns the lines as bytes; with one, each
        line as a :class:`Message`, or as a :class:`BadLine` when it does not
        parse.

    Examples
    --------
    >>> decoder = LineDecoder(parser=MessageParser())
    >>> decoder.feed(b"?watchdog\n!help ok 2\r#log")
    [<Message request watchdog >, <Message reply help (b'ok', b'2')>]
    >>> decoder.feed(b" x\n")
    [<Message inform log (b'x')>]
    """

    __slots__ = ("_max_line", "_parse", "_pieces", "_size")

    def __init__(self, max_line: int = MAX_MSG_SIZE,
                 parser: Optional[MessageParser] = None) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1 (got %r)" % (max_line,))
        self._max_line = max_line
        self._parse = parser.parse if parser is not None else None
        self._pieces: List[bytes] = []  # the unfinished line, as received
        self._size = 0

    @property
    def max_line(self) -> int:
        """Longest line accepted (bytes, without end-of-line)."""
        return self._max_line

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished line held (never more than :attr:`max_line`)."""
        return self._size

    def feed(self, data: bytes) -> List[Any]:
        """Take received bytes; return what they complete.

        Parameters
        ----------
        data : bytes
            Any number of bytes as read from the peer.

        Returns
        -------
        items : list
            The completed, non-empty lines in order: bytes, or with a parser
            :class:`Message` and :class:`BadLine` objects.

        Raises
        ------
        KatcpLineTooLong
            When a line passes :attr:`max_line`. Its ``decoded`` holds what
            this call completed before that line; the decoder is left empty.
        """
        if not isinstance(data, bytes):
            data = bytes(data)
        if _CR in data:
            data = data.replace(_CR, _LF)
        max_line = self._max_line
        if _LF not in data:
            size = self._size + len(data)
            if size > max_line:
                self._reset()
                raise KatcpLineTooLong(max_line, size)
            if data:
                self._pieces.append(data)
                self._size = size
            return []
        if self._pieces:
            self._pieces.append(data)
            data = b"".join(self._pieces)
            self._pieces = []
            self._size = 0
        lines = data.split(_LF)
        rest = lines.pop()
        parse = self._parse
        items: List[Any] = []
        for line in lines:
            if not line:
                continue
            if len(line) > max_line:
                raise KatcpLineTooLong(max_line, len(line), items)
            if parse is None:
                items.append(line)
            else:
                try:
                    items.append(parse(line))
                except KatcpSyntaxError as exc:
                    items.append(BadLine(line, exc))
        if len(rest) > max_line:
            raise KatcpLineTooLong(max_line, len(rest), items)
        if rest:
            self._pieces.append(rest)
            self._size = len(rest)
        return items

    def _reset(self) -> None:
        self._pieces = []
        self._size = 0
