"""SAMP Standard Profile lockfiles: reading, writing and hub discovery.

The lockfile of the main hub is ``$SAMP_HUB`` (``std-lockurl:<url>``) or
``~/.samp``; hubs started in ``multiple`` mode write
``~/.samp-1/samp-hub-<hub id>``. Files are written with mode 0600. A hub
replaces a lockfile only when the hub it names does not answer, and removes
only the lockfile it wrote itself (see :func:`remove_lock_file`).
"""
import datetime
import logging
import os
import stat
import tempfile
import urllib.parse
import urllib.request
import warnings
import xmlrpc.client
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from ._conf import conf
from .errors import SAMPHubError, SAMPWarning
from .utils import SAMPXXEServerProxy

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

log = logging.getLogger("samp_compat.lockfile")

#: Prefix of a ``SAMP_HUB`` value naming a Standard Profile lockfile.
STD_LOCKURL = "std-lockurl:"
#: Seconds allowed for the ``samp.hub.ping`` that tells whether a hub is alive.
PING_TIMEOUT = 3.0
#: Seconds allowed to fetch a lockfile given by an http URL.
FETCH_TIMEOUT = 5.0
#: Largest lockfile read, in bytes.
MAX_LOCKFILE_BYTES = 64 * 1024
_FILE_MODE = stat.S_IRUSR | stat.S_IWUSR
_DIR_MODE = stat.S_IRWXU
_MULTIPLE_DIR = ".samp-1"
_MULTIPLE_PREFIX = "samp-hub"
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "")


def default_lockfile() -> str:
    """Return the path of the single-mode lockfile, ``~/.samp``.

    Returns
    -------
    path : str
    """
    return os.path.join(str(Path.home()), ".samp")


def multiple_lockfile_dir() -> str:
    """Return the directory of multiple-mode lockfiles, ``~/.samp-1``.

    Returns
    -------
    path : str
    """
    return os.path.join(str(Path.home()), _MULTIPLE_DIR)


def _lockfile_location(name: str) -> str:
    """Turn a lockfile name or ``file:`` URL into a local path (URLs other than file: unchanged)."""
    parsed = urllib.parse.urlparse(name)
    if parsed.scheme == "file":
        return urllib.parse.unquote(parsed.path)
    return name


def read_lockfile(lockfilename: str) -> Dict[str, str]:
    """Read the lockfile ``lockfilename`` into a dictionary.

    Parameters
    ----------
    lockfilename : str
        A path, a ``file:`` URL or an ``http(s):`` URL. Lines starting with
        ``#`` and blank lines are skipped; each other line is ``key=value``
        (split at the first ``=``, so values may contain ``=``).

    Returns
    -------
    lockfiledict : dict

    Raises
    ------
    OSError
        The lockfile cannot be read.
    """
    parsed = urllib.parse.urlparse(lockfilename)
    if parsed.scheme in ("http", "https"):
        text = _fetch(lockfilename, parsed.hostname or "")
    else:
        with open(_lockfile_location(lockfilename), "rb") as fobj:
            text = fobj.read(MAX_LOCKFILE_BYTES).decode("utf-8", "replace")
    result = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            result[key.strip()] = value.strip()
    return result


def _fetch(url: str, host: str) -> str:
    if host not in _LOOPBACK_HOSTS and not conf.use_internet:
        raise OSError("lockfile URL on a remote host and conf.use_internet is False")
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as resp:
            return resp.read(MAX_LOCKFILE_BYTES).decode("utf-8", "replace")
    except OSError:
        raise
    except Exception as exc:  # http.client errors that are not OSError
        raise OSError("cannot fetch lockfile: %s" % type(exc).__name__) from None


def write_lockfile(lockfilename: str, lockfiledict: Dict[str, str]) -> None:
    """Write ``lockfiledict`` to ``lockfilename`` with mode 0600, atomically.

    Parameters
    ----------
    lockfilename : str
    lockfiledict : dict
        ``key=value`` pairs; values must not contain line breaks.

    Raises
    ------
    ValueError
        A key or value contains a line break, or a key contains ``=``.
    """
    lines = ["# SAMP lockfile written on %s\n" % datetime.datetime.now().isoformat(),
             "# Standard Profile required keys\n"]
    for key, value in lockfiledict.items():
        key, value = str(key), str(value)
        if "\n" in key + value or "\r" in key + value or "=" in key:
            raise ValueError("lockfile keys and values must be single lines")
        lines.append("%s=%s\n" % (key, value))
    directory = os.path.dirname(os.path.abspath(lockfilename))
    fd, tmp = tempfile.mkstemp(prefix=".samp-lock-", dir=directory)
    try:
        os.fchmod(fd, _FILE_MODE) if hasattr(os, "fchmod") else os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fobj:
            fobj.writelines(lines)
        os.replace(tmp, lockfilename)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def check_running_hub(lockfilename: str) -> Tuple[bool, Dict[str, str]]:
    """Tell whether the hub described by ``lockfilename`` answers.

    Parameters
    ----------
    lockfilename : str
        Path or URL of the lockfile.

    Returns
    -------
    is_running : bool
        True when the lockfile exists and its hub answers ``samp.hub.ping``
        (an HTTP error or a fault also proves a live server).
    hub_params : dict
        The lockfile contents (empty if it cannot be read).
    """
    try:
        lockfiledict = read_lockfile(lockfilename)
    except (OSError, ValueError):
        return False, {}
    url = lockfiledict.get("samp.hub.xmlrpc.url")
    if not url:
        return False, lockfiledict
    return _hub_answers(url.replace("\\", "")), lockfiledict


def _hub_answers(url: str) -> bool:
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        return False
    proxy = SAMPXXEServerProxy(url, allow_none=True, timeout=PING_TIMEOUT)
    try:
        proxy.samp.hub.ping()
        return True
    except (xmlrpc.client.ProtocolError, xmlrpc.client.Fault, xmlrpc.client.ResponseError):
        return True
    except (OSError, ValueError):
        return False
    finally:
        proxy("close")()


def _env_lockfile() -> Optional[str]:
    """The lockfile named by ``$SAMP_HUB`` ("" if it names another profile), or None."""
    value = os.environ.get("SAMP_HUB")
    if value is None:
        return None
    if value.startswith(STD_LOCKURL):
        return value[len(STD_LOCKURL):]
    return ""


def create_lock_file(lockfilename: Optional[str] = None, mode: Optional[str] = None,
                     hub_id: Optional[str] = None,
                     hub_params: Optional[Dict[str, str]] = None) -> Union[str, bool]:
    """Write the lockfile of a starting hub.

    The location is ``$SAMP_HUB`` when set, else ``lockfilename`` when given,
    else ``~/.samp`` (``mode="single"``) or ``~/.samp-1/samp-hub-<hub_id>``
    (``mode="multiple"``, directory mode 0700). Unlike astropy, lockfiles of
    other hubs are never removed here, and an existing lockfile is replaced
    only if its hub does not answer.

    Parameters
    ----------
    lockfilename : str, optional
    mode : {"single", "multiple"}, optional
    hub_id : str, optional
    hub_params : dict
        The lockfile contents.

    Returns
    -------
    lockfilename : str or False
        The path written, or False (with a :class:`SAMPWarning`) when another
        hub is running there or ``$SAMP_HUB`` is not a local ``file:`` URL.
    """
    env = _env_lockfile()
    if env is not None:
        parsed = urllib.parse.urlparse(env)
        if not env or parsed.scheme not in ("file", ""):
            warnings.warn("SAMP_HUB names the lockfile %s, which is not a local file: no "
                          "lockfile written" % env, SAMPWarning)
            return False
        lockfilename = _lockfile_location(env)
    elif lockfilename is None:
        if (mode or "single") == "single":
            lockfilename = default_lockfile()
        else:
            lockdir = multiple_lockfile_dir()
            os.makedirs(lockdir, exist_ok=True)
            os.chmod(lockdir, _DIR_MODE)
            lockfilename = os.path.join(lockdir, "%s-%s" % (_MULTIPLE_PREFIX, hub_id))
    running, _ = check_running_hub(lockfilename)
    if running:
        warnings.warn("Another SAMP Hub is already running (lockfile %s): no lockfile "
                      "written" % lockfilename, SAMPWarning)
        return False
    log.debug("Lock-file: %s", lockfilename)
    write_lockfile(lockfilename, hub_params or {})
    return lockfilename


def remove_lock_file(lockfilename: str, secret: str) -> bool:
    """Delete ``lockfilename`` if it still holds ``secret`` (the hub's own file).

    Parameters
    ----------
    lockfilename : str
    secret : str
        The ``samp.secret`` the hub wrote.

    Returns
    -------
    removed : bool
    """
    try:
        if read_lockfile(lockfilename).get("samp.secret") != secret:
            return False
        os.remove(lockfilename)
        return True
    except OSError:
        return False


def _candidate_lockfiles() -> Tuple[str, list]:
    env = _env_lockfile()
    main = default_lockfile() if env is None else env
    extra = []
    lockdir = multiple_lockfile_dir()
    if os.path.isdir(lockdir):
        for name in sorted(os.listdir(lockdir)):
            if name.startswith(_MULTIPLE_PREFIX):
                extra.append(os.path.join(lockdir, name))
    return main, extra


def get_running_hubs() -> Dict[str, Dict[str, str]]:
    """Return the lockfile contents of every running hub, single and multiple mode.

    Returns
    -------
    running_hubs : dict
        ``{lockfile name: {key: value, ...}, ...}``.
    """
    hubs = {}
    main, extra = _candidate_lockfiles()
    for name in ([main] if main else []) + extra:
        running, params = check_running_hub(name)
        if running:
            hubs[name] = params
    return hubs


def get_main_running_hub() -> Dict[str, str]:
    """Return the lockfile contents of the hub named by ``$SAMP_HUB`` or ``~/.samp``.

    Returns
    -------
    hub_params : dict

    Raises
    ------
    SAMPHubError
        No hub is running there, or ``$SAMP_HUB`` names another profile.
    """
    env = _env_lockfile()
    if env == "":
        raise SAMPHubError("SAMP Hub profile not supported.")
    name = default_lockfile() if env is None else env
    running, params = check_running_hub(name)
    if not running:
        raise SAMPHubError("Unable to find a running SAMP Hub.")
    return params


def remove_garbage_lock_files() -> None:
    """Delete ``~/.samp`` and ``~/.samp-1/samp-hub*`` files whose hub does not answer.

    Only call this explicitly; hubs never call it. A file is deleted only when
    it is a regular file, its hub does not answer, and it was not rewritten
    by another hub meanwhile.
    """
    lockdir = multiple_lockfile_dir()
    names = [default_lockfile()]
    if os.path.isdir(lockdir):
        names += [os.path.join(lockdir, n) for n in os.listdir(lockdir)
                  if n.startswith(_MULTIPLE_PREFIX)]
    for name in names:
        if not os.path.isfile(name):
            continue
        running, params = check_running_hub(name)
        if not running:
            remove_lock_file(name, params.get("samp.secret", ""))
