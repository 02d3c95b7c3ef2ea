"""The ``pyvo.samp.vo_helpers`` module name; the helpers live in :mod:`samp_compat.helpers`."""
from .helpers import (  # noqa: F401
    SAMPIntegratedClient,
    accessible_table,
    connection,
    find_client_id,
    send_image_to,
    send_product_to,
    send_spectrum_to,
    send_table_to,
)

__all__ = [
    "find_client_id", "send_table_to", "send_product_to", "send_spectrum_to",
    "send_image_to", "accessible_table", "connection",
]
