"""clever-show's ``lib/messaging.py``, replaced by protocompat's implementation.

Drop this file into clever-show's ``lib/`` folder in place of theirs and
install protocompat (``pip install protocompat``). Both ways clever-show
imports the module, ``from lib import messaging`` and ``import messaging``
(with ``lib/`` on ``sys.path``), then give the one module
``protocompat.messaging``: one callback registry, one ``NotifierSock``.
"""
import runpy
import sys
from typing import TYPE_CHECKING

import protocompat.messaging

if TYPE_CHECKING:  # what type checkers see under this file's names
    from protocompat.messaging import *  # noqa: F401,F403

if __name__ == "__main__":  # ``python -m lib.messaging``: the example
    runpy.run_module("protocompat.messaging", run_name="__main__", alter_sys=True)
else:
    sys.modules[__name__] = protocompat.messaging
