"""Shared thread and socket helpers (``netutil``) and clever-show\x27s ``messaging``."""
