"""Registered clients, their metadata and subscriptions, and SAMP typing helpers."""
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

from ._hub_delivery import ClientEndpoint
from .errors import SAMPProxyError

HUB_PUBLIC_ID = "cli#hub"


def get_mtype_subtypes(mtype: str) -> List[str]:
    """Return ``mtype`` and every wildcard pattern that matches it, most specific first.

    Parameters
    ----------
    mtype : str

    Returns
    -------
    types : list of str
        For ``"samp.app.ping"``: ``['samp.app.ping', 'samp.app.*', 'samp.*', '*']``.
    """
    atoms = mtype.split(".")
    result = [mtype]
    for i in range(len(atoms) - 1, 0, -1):
        result.append(".".join(atoms[:i]) + ".*")
    if mtype != "*":
        result.append("*")
    return result


def to_samp(value: Any) -> Any:
    """Return ``value`` with SAMP typing: strings, lists and string-keyed maps only.

    Booleans become ``"1"``/``"0"``, numbers their decimal text, ``None`` ``""``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dict):
        return {str(k): to_samp(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_samp(v) for v in value]
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    data = getattr(value, "data", None)  # xmlrpc.client.Binary
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(value)


def bad_key() -> SAMPProxyError:
    """The fault for an unknown private key (the key is not repeated)."""
    return SAMPProxyError(5, "Private-key expired or invalid.")


class Client(ClientEndpoint):
    """A registered client: identity, metadata, subscriptions and delivery state."""

    def __init__(self, public_id: str, private_key: str, web: bool = False) -> None:
        super().__init__(public_id, private_key)
        self.web = web
        self.metadata: Dict[str, Any] = {}
        self.subscriptions: Dict[str, Any] = {}
        self.routing: Dict[str, Any] = {}
        self.last_activity = time.monotonic()

    def subscription_for(self, mtype: str) -> Optional[Dict[str, Any]]:
        """The annotation map of the subscription matching ``mtype``, or None."""
        for pattern in get_mtype_subtypes(mtype):
            if pattern in self.routing:
                annotation = self.routing[pattern]
                return annotation if isinstance(annotation, dict) else {}
        return None


class Registry:
    """Thread-safe table of registered clients, in registration order."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._by_key: Dict[str, Client] = {}
        self._by_id: Dict[str, Client] = {}
        self._counter = 0

    def add(self, web: bool = False) -> Client:
        """Register a new client with a fresh private key and public id."""
        with self.lock:
            public_id = HUB_PUBLIC_ID if self._counter == 0 else "cli#%d" % self._counter
            self._counter += 1
            client = Client(public_id, str(uuid.uuid4()), web)
            self._by_key[client.private_key] = client
            self._by_id[public_id] = client
            return client

    def remove(self, client: Client) -> bool:
        """Remove ``client``; False if it was not registered."""
        with self.lock:
            if self._by_key.get(client.private_key) is not client:
                return False
            del self._by_key[client.private_key]
            del self._by_id[client.public_id]
            return True

    def by_key(self, private_key: Any) -> Client:
        """The client with ``private_key``; SAMP fault 5 otherwise."""
        client = self._by_key.get(private_key) if isinstance(private_key, str) else None
        if client is None:
            raise bad_key()
        client.last_activity = time.monotonic()
        return client

    def by_id(self, public_id: Any) -> Client:
        """The client with ``public_id``; SAMP fault 6 otherwise."""
        client = self._by_id.get(public_id) if isinstance(public_id, str) else None
        if client is None:
            raise SAMPProxyError(6, "Invalid client ID")
        return client

    def get_by_id(self, public_id: str) -> Optional[Client]:
        """The client with ``public_id`` or None."""
        return self._by_id.get(public_id)

    def clients(self) -> List[Client]:
        """Every registered client, in registration order."""
        with self.lock:
            return list(self._by_key.values())

    def subscribed(self, mtype: str) -> List[Client]:
        """Clients subscribed to ``mtype`` (wildcards honoured)."""
        return [c for c in self.clients() if c.subscription_for(mtype) is not None]


def routing_table(subscriptions: Dict[str, Any]) -> Dict[str, Any]:
    """Drop keys shadowed by a wildcard key of the same map."""
    wildcards = [k[:-1] for k in subscriptions if k.endswith("*")]
    return {k: v for k, v in subscriptions.items()
            if not any(k != w + "*" and k.startswith(w) for w in wildcards)}
