"""clever-show's ``lib`` folder as far as protocompat provides it: ``lib/messaging.py``."""
