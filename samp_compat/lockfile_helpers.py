"""Lockfile helpers under the module name used by ``astropy.samp.lockfile_helpers``.

Everything lives in :mod:`samp_compat.lockfile`; this module re-exports it.
"""
from .lockfile import (  # noqa: F401
    check_running_hub,
    create_lock_file,
    default_lockfile,
    get_main_running_hub,
    get_running_hubs,
    multiple_lockfile_dir,
    read_lockfile,
    remove_garbage_lock_files,
    remove_lock_file,
    write_lockfile,
)

__all__ = [
    "read_lockfile",
    "write_lockfile",
    "create_lock_file",
    "remove_lock_file",
    "get_main_running_hub",
    "get_running_hubs",
    "check_running_hub",
    "remove_garbage_lock_files",
    "default_lockfile",
    "multiple_lockfile_dir",
]

# Further names of the original module, so that imports from it keep working.
from .errors import SAMPHubError, SAMPWarning  # noqa: E402,F401
from .lockfile import log  # noqa: E402,F401
from .utils import SAMPXXEServerProxy  # noqa: E402,F401
