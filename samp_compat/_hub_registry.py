"""The hub's table of registered clients, their metadata and subscriptions."""
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

from ._hub_delivery import Recipient
from ._mtypes import mtype_subtypes, routing_table
from .errors import SAMPProxyError

HUB_PUBLIC_ID = "cli#hub"


def bad_key() -> SAMPProxyError:
    """The fault for an unknown private key (the key is not repeated)."""
    return SAMPProxyError(5, "Private-key expired or invalid.")


class Client:
    """A registered client: identity, metadata, subscriptions and where its callbacks go."""

    def __init__(self, public_id: str, private_key: str, web: bool = False) -> None:
        self.public_id = public_id
        self.private_key = private_key
        self.web = web
        self.metadata: Dict[str, Any] = {}
        self.subscriptions: Dict[str, Any] = {}
        self.routing: Dict[str, Any] = {}
        self.last_activity = time.monotonic()
        self.recipient = Recipient(public_id, private_key)

    def subscribe(self, subscriptions: Dict[str, Any]) -> None:
        """Replace the subscriptions with ``subscriptions`` (kept as declared)."""
        self.subscriptions = subscriptions
        self.routing = routing_table(subscriptions)

    def subscription_for(self, mtype: str) -> Optional[Any]:
        """The annotation of the subscription matching ``mtype`` (as declared), or None."""
        for pattern in mtype_subtypes(mtype):
            if pattern in self.routing:
                return self.routing[pattern]
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
