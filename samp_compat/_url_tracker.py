"""Which URLs the Web Profile's URL translator may fetch for which web client.

As JSAMP's hub does, the translator serves a web client only URLs that
appeared in the callbacks delivered to that client. A local URL (``file:``,
or a loopback host) that a web client itself mentioned in what it sent is
never served, so that a web client cannot have a local file echoed back to
it by another client and then read it. No I/O; thread-safe.
"""
import collections
import threading
import urllib.parse
from typing import Any, Dict, Iterator

#: Most URLs remembered per web client (and from all web clients); the oldest are forgotten.
MAX_TRACKED_URLS = 10000
#: Deepest nesting of lists and maps searched for URLs.
MAX_SEARCH_DEPTH = 32
_URL_SCHEMES = ("file", "http", "https", "ftp")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "")


def _bounded_add(urls: "collections.OrderedDict[str, None]", url: str) -> None:
    urls[url] = None
    urls.move_to_end(url)
    while len(urls) > MAX_TRACKED_URLS:
        urls.popitem(last=False)


def find_urls(value: Any, depth: int = 0) -> Iterator[str]:
    """Yield the strings in ``value`` (nested lists and maps included) that are URLs.

    Parameters
    ----------
    value : object
        A SAMP value: a string, a list or a map (other types are skipped).
    depth : int, optional
        Nesting level of ``value`` (the search stops at :data:`MAX_SEARCH_DEPTH`).

    Yields
    ------
    url : str
        A string whose scheme is ``file``, ``http``, ``https`` or ``ftp``.
    """
    if depth > MAX_SEARCH_DEPTH:
        return
    if isinstance(value, str):
        scheme, sep, _ = value.partition(":")
        if sep and scheme.lower() in _URL_SCHEMES:
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from find_urls(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from find_urls(item, depth + 1)


def is_local_url(url: str) -> bool:
    """Whether ``url`` names a local resource: a ``file:`` URL or a loopback host."""
    try:
        parsed = urllib.parse.urlsplit(url)
        host = parsed.hostname or ""
    except ValueError:
        return True  # unparsable: treated with the caution a local URL gets
    return parsed.scheme.lower() == "file" or host.lower() in _LOOPBACK_HOSTS


class UrlTracker:
    """Remembers the URLs each web client was sent and the local URLs web clients sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._permitted: Dict[str, "collections.OrderedDict[str, None]"] = {}
        self._from_web: "collections.OrderedDict[str, None]" = collections.OrderedDict()

    def note_sent_by_web_client(self, value: Any) -> None:
        """Record the local URLs in ``value``, which a web client sent to the hub."""
        with self._lock:
            for url in find_urls(value):
                if is_local_url(url):
                    _bounded_add(self._from_web, url)

    def note_delivered(self, client_key: str, value: Any) -> None:
        """Record the URLs in ``value``, which the hub delivered to web client ``client_key``."""
        with self._lock:
            urls = self._permitted.setdefault(client_key, collections.OrderedDict())
            for url in find_urls(value):
                if url not in self._from_web:
                    _bounded_add(urls, url)

    def is_permitted(self, client_key: str, url: str) -> bool:
        """Whether the translator may fetch ``url`` for web client ``client_key``."""
        with self._lock:
            return url in self._permitted.get(client_key, ()) and url not in self._from_web

    def forget(self, client_key: str) -> None:
        """Drop what was recorded for web client ``client_key`` (it left)."""
        with self._lock:
            self._permitted.pop(client_key, None)
