"""A self-contained tour: a hub, two clients, and a table sent from one to the other."""
import os
import shutil
import tempfile
import threading
from typing import Any, Dict

from .helpers import send_table_to
from .hub import SAMPHubServer
from .integrated_client import SAMPIntegratedClient

_WAIT = 10.0
_VOTABLE = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
 <RESOURCE>
  <TABLE name="stars">
   <FIELD name="name" datatype="char" arraysize="*"/>
   <FIELD name="ra" datatype="double" unit="deg"/>
   <FIELD name="dec" datatype="double" unit="deg"/>
   <DATA><TABLEDATA>
    <TR><TD>Vega</TD><TD>279.2347</TD><TD>38.7837</TD></TR>
    <TR><TD>Sirius</TD><TD>101.2872</TD><TD>-16.7161</TD></TR>
    <TR><TD>Polaris</TD><TD>37.9546</TD><TD>89.2641</TD></TR>
   </TABLEDATA></DATA>
  </TABLE>
 </RESOURCE>
</VOTABLE>
"""


def _astropy_table() -> Any:
    """A small astropy Table, or None when astropy is not installed."""
    try:
        from astropy.table import Table
    except ImportError:
        return None
    return Table({"name": ["Vega", "Sirius", "Polaris"],
                  "ra": [279.2347, 101.2872, 37.9546], "dec": [38.7837, -16.7161, 89.2641]})


def demo() -> int:
    """Run the tour, printing each step; return the exit status (0 on success)."""
    workdir = tempfile.mkdtemp(prefix="samp-compat-demo-")
    os.environ.pop("SAMP_HUB", None)  # it would override the private lockfile
    hub = SAMPHubServer(lockfile=os.path.join(workdir, "lockfile"), web_profile=False,
                        label="demo hub")
    sender = SAMPIntegratedClient(name="demo-sender", description="sends a table")
    receiver = SAMPIntegratedClient(name="demo-receiver", description="loads tables")
    loaded = threading.Event()
    try:
        hub.start()
        print("hub running at %s (lockfile %s)" % (hub.params["samp.hub.xmlrpc.url"],
                                                   os.path.join(workdir, "lockfile")))
        sender.connect(hub=hub)
        receiver.connect(hub=hub)
        print("registered %s as %s and %s as %s" % (
            "demo-sender", sender.get_public_id(), "demo-receiver", receiver.get_public_id()))

        def on_table(private_key: str, sender_id: str, msg_id: str, mtype: str,
                     params: Dict[str, Any], extra: Dict[str, Any]) -> None:
            path = params["url"][len("file://"):]
            with open(path, encoding="utf-8") as fobj:
                rows = fobj.read().count("<TR>")
            print("receiver: %s from %s: %r with %d rows" % (mtype, sender_id, params["name"],
                                                              rows))
            receiver.ereply(msg_id, "samp.ok", result={"rows": str(rows)})
            loaded.set()

        receiver.bind_receive_call("table.load.votable", on_table)
        print("clients seen by the sender: %s" % sender.get_registered_clients())
        table = _astropy_table()
        if table is not None:
            print("sender: send_table_to(conn, <astropy Table, %d rows>, "
                  "client_name='demo-receiver')" % len(table))
            send_table_to(sender, table, client_name="demo-receiver", name="stars")
        else:
            table_path = os.path.join(workdir, "stars.xml")
            with open(table_path, "w", encoding="utf-8") as fobj:
                fobj.write(_VOTABLE)
            url = "file://" + table_path
            print("sender: table.load.votable -> %s (%s)" % (receiver.get_public_id(), url))
            response = sender.ecall_and_wait(receiver.get_public_id(), "table.load.votable",
                                             str(int(_WAIT)), url=url, name="stars")
            print("sender: response %s" % response)
        return 0 if loaded.wait(_WAIT) else 1
    finally:
        for client in (sender, receiver):
            if client.is_connected:
                client.disconnect()
        hub.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        print("hub stopped")
