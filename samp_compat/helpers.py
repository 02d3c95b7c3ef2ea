"""High-level helpers for sending data over SAMP (the ``pyvo.samp`` helpers).

astropy is imported only when a table is actually written.
"""
import contextlib
import os
import pathlib
import tempfile
from typing import Any, Iterator, Optional

from .integrated_client import SAMPIntegratedClient

__all__ = [
    "find_client_id", "send_table_to", "send_product_to", "send_spectrum_to",
    "send_image_to", "accessible_table", "connection",
]

#: MType used by :func:`send_table_to`.
TABLE_MTYPE = "table.load.votable"
#: MType used by :func:`send_image_to`.
IMAGE_MTYPE = "image.load.fits"
#: MType used by :func:`send_spectrum_to`.
SPECTRUM_MTYPE = "spectrum.load.ssa-generic"
#: Seconds :func:`send_table_to` waits for each receiver to acknowledge.
TABLE_TIMEOUT = "10"


def find_client_id(conn: SAMPIntegratedClient, name: str) -> str:
    """Return the public id of the registered client whose ``samp.name`` is ``name``.

    Parameters
    ----------
    conn : SAMPIntegratedClient
        A connected client.
    name : str
        The ``samp.name`` looked for.

    Returns
    -------
    client_id : str
        Its public id (the first match).

    Raises
    ------
    KeyError
        No registered client has that name.
    """
    for client_id in conn.get_registered_clients():
        if conn.get_metadata(client_id).get("samp.name") == name:
            return client_id
    raise KeyError(name)


def _write_votable(table: Any, stream: Any) -> None:
    from astropy.io.votable.tree import VOTableFile

    if isinstance(table, VOTableFile):
        table.to_xml(stream)  # keeps PARAMs and INFOs
    else:
        table.write(output=stream, format="votable")


@contextlib.contextmanager
def accessible_table(table: Any) -> Iterator[str]:
    """Make a table available under a ``file://`` URL inside a ``with`` block.

    Parameters
    ----------
    table : astropy.table.Table or astropy.io.votable.tree.VOTableFile
        The table; a ``VOTableFile`` is written as is, with its PARAMs and INFOs.

    Yields
    ------
    url : str
        ``file://`` URL of a temporary VOTable file, removed on exit.
    """
    handle, path = tempfile.mkstemp(suffix=".xml")
    try:
        with open(handle, "w", encoding="utf-8") as stream:
            _write_votable(table, stream)
        yield pathlib.Path(path).as_uri()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def send_table_to(conn: SAMPIntegratedClient, table: Any, client_name: Optional[str] = None,
                  name: str = "data") -> None:
    """Send a table with ``table.load.votable`` and wait for each receiver.

    Parameters
    ----------
    conn : SAMPIntegratedClient
        A connected client.
    table : astropy.table.Table or VOTableFile
        The table to send.
    client_name : str, optional
        ``samp.name`` of the receiver; ``None`` sends to every client
        subscribed to ``table.load.votable``.
    name : str, optional
        Name under which the receiver shows the table.

    Raises
    ------
    KeyError
        No client is called ``client_name``.
    SAMPProxyError
        The hub or a receiver reported an error or a timeout.
    """
    with accessible_table(table) as url:
        message = {"samp.mtype": TABLE_MTYPE, "samp.params": {"url": url, "name": name}}
        if client_name is None:
            recipients = list(conn.get_subscribed_clients(TABLE_MTYPE))
        else:
            recipients = [find_client_id(conn, client_name)]
        for client_id in recipients:
            conn.call_and_wait(client_id, message, TABLE_TIMEOUT)


def send_product_to(conn: SAMPIntegratedClient, url: str, mtype: str,
                    client_name: Optional[str] = None, name: str = "data") -> None:
    """Notify a client (or every subscribed client) to load data from a URL.

    Parameters
    ----------
    conn : SAMPIntegratedClient
        A connected client.
    url : str
        URL of the data.
    mtype : str
        MType of the notification.
    client_name : str, optional
        ``samp.name`` of the receiver; ``None`` broadcasts to the clients
        subscribed to ``mtype``.
    name : str, optional
        Name under which the receiver shows the data.

    Raises
    ------
    KeyError
        No client is called ``client_name``.
    """
    message = {"samp.mtype": mtype, "samp.params": {"url": url, "name": name}}
    if client_name is None:
        conn.notify_all(message)
    else:
        conn.notify(find_client_id(conn, client_name), message)


def send_spectrum_to(conn: SAMPIntegratedClient, url: str, client_name: Optional[str] = None,
                     name: str = "data") -> None:
    """Ask a spectrum client to load a spectrum (``spectrum.load.ssa-generic``).

    Parameters
    ----------
    conn : SAMPIntegratedClient
        A connected client.
    url : str
        URL of the spectrum.
    client_name : str, optional
        ``samp.name`` of the receiver; ``None`` broadcasts.
    name : str, optional
        Name under which the receiver shows it.
    """
    send_product_to(conn, url, SPECTRUM_MTYPE, client_name=client_name, name=name)


def send_image_to(conn: SAMPIntegratedClient, url: str, client_name: Optional[str] = None,
                  name: str = "data") -> None:
    """Ask an image client to load an image (``image.load.fits``).

    Parameters
    ----------
    conn : SAMPIntegratedClient
        A connected client.
    url : str
        URL of the image.
    client_name : str, optional
        ``samp.name`` of the receiver; ``None`` broadcasts.
    name : str, optional
        Name under which the receiver shows it.
    """
    send_product_to(conn, url, IMAGE_MTYPE, client_name=client_name, name=name)


@contextlib.contextmanager
def connection(client_name: str = "pyvo client", description: str = "A generic PyVO client",
               **kwargs: Any) -> Iterator[SAMPIntegratedClient]:
    """Give the ``with`` block a connected SAMP client, disconnected on exit.

    Parameters
    ----------
    client_name : str, optional
        ``samp.name`` of the client.
    description : str, optional
        ``samp.description.text`` of the client.
    **kwargs
        Passed to :class:`SAMPIntegratedClient` (``addr``, ``port``,
        ``metadata``, ``callable``, ...).

    Yields
    ------
    conn : SAMPIntegratedClient
        The connected client (the hub is found via ``$SAMP_HUB`` or ``~/.samp``).
    """
    client = SAMPIntegratedClient(name=client_name, description=description, **kwargs)
    client.connect()
    try:
        yield client
    finally:
        client.disconnect()
