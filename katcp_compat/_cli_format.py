"""How the command-line client shows KATCP messages to people."""

from ._text import to_str
from .core import Message

__all__ = ["readable"]


def readable(msg: Message) -> str:
    """Format a message for people: arguments unescaped, separated by spaces.

    Parameters
    ----------
    msg : Message
        The message.

    Returns
    -------
    text : str
    """
    args = " ".join(to_str(arg, "replace") for arg in msg.arguments)
    mid = "[%s]" % msg.mid.decode() if msg.mid else ""
    return ("%s%s%s %s" % ("?!#"[msg.mtype], msg.name, mid, args)).rstrip()
