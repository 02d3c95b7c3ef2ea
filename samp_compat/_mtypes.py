"""MType patterns: which subscription keys match an MType (no I/O, imports nothing)."""
from typing import Any, Dict, List

#: The subscription key that matches every MType.
ANY_MTYPE = "*"
_WILDCARD_SUFFIX = ".*"


def mtype_subtypes(mtype: str) -> List[str]:
    """Return ``mtype`` and every subscription key that matches it, most specific first.

    The list ends with ``"*"`` for every MType, ``"*"`` itself included (so
    ``mtype_subtypes("*")`` is ``["*", "*"]``, as astropy's
    ``SAMPHubServer.get_mtype_subtypes``).

    Parameters
    ----------
    mtype : str
        A dot-separated MType such as ``samp.app.ping``.

    Returns
    -------
    types : list of str
        For ``"samp.app.ping"``: ``['samp.app.ping', 'samp.app.*', 'samp.*', '*']``.
    """
    atoms = mtype.split(".")
    found = [mtype]
    for end in range(len(atoms) - 1, 0, -1):
        found.append(".".join(atoms[:end]) + _WILDCARD_SUFFIX)
    found.append(ANY_MTYPE)
    return found


def routing_table(subscriptions: Dict[str, Any]) -> Dict[str, Any]:
    """Return ``subscriptions`` without the keys a wildcard key of the same map covers.

    Parameters
    ----------
    subscriptions : dict
        ``{mtype-pattern: annotation}`` as a client declared it.

    Returns
    -------
    routing : dict
        The keys that decide where a message goes, with their annotations.
    """
    prefixes = [key[:-1] for key in subscriptions if key.endswith(ANY_MTYPE)]
    return {key: value for key, value in subscriptions.items()
            if not any(key != prefix + ANY_MTYPE and key.startswith(prefix)
                       for prefix in prefixes)}
