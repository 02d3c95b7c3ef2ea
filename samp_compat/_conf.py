"""The package configuration: :data:`conf`, an instance of :class:`Conf`."""
import contextlib
from typing import Any, Dict, Iterator, Optional, Tuple

__all__ = ["Conf", "conf"]


class Conf:
    """Configuration parameters for :mod:`samp_compat`.

    Attributes
    ----------
    use_internet : bool
        Whether hubs and clients may probe the internet to choose a public
        host name for their servers (default ``False``: always 127.0.0.1).
    n_retries : int
        How many times a hub retries a delivery that fails with a fault.
    """

    use_internet: bool
    n_retries: int
    _defaults: Dict[str, Any] = {"use_internet": False, "n_retries": 10}
    _descriptions: Dict[str, str] = {
        "use_internet": "Whether to allow samp_compat to use the internet, if available.",
        "n_retries": "How many times to retry communications when they fail.",
    }

    def __init__(self) -> None:
        self.reset()

    def reset(self, attr: Optional[str] = None) -> None:
        """Restore one setting (or all of them) to the default.

        Parameters
        ----------
        attr : str, optional
            Name of the setting; all settings when omitted.
        """
        names = [attr] if attr is not None else list(self._defaults)
        for name in names:
            if name not in self._defaults:
                raise AttributeError("No configuration item %r" % (name,))
            object.__setattr__(self, name, self._defaults[name])

    def reload(self, attr: Optional[str] = None) -> Any:
        """Reload one setting (or all of them); there is no configuration file.

        Parameters
        ----------
        attr : str, optional
            Name of the setting; all settings when omitted.

        Returns
        -------
        object
            The reloaded value of ``attr`` (None when all settings are reloaded).
        """
        self.reset(attr)
        return getattr(self, attr) if attr is not None else None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._defaults))

    def keys(self) -> Iterator[str]:
        """Iterate over the setting names.

        Returns
        -------
        iterator of str
            ``use_internet`` and ``n_retries``.
        """
        return iter(self)

    def values(self) -> Iterator[Any]:
        """Iterate over the current values of the settings.

        Returns
        -------
        iterator
            The current values, in the order of :meth:`keys`.
        """
        return iter([getattr(self, name) for name in self])

    def items(self) -> Iterator[Tuple[str, Any]]:
        """Iterate over ``(name, current value)`` pairs.

        Returns
        -------
        iterator of tuple
            One pair per setting.
        """
        return iter([(name, getattr(self, name)) for name in self])

    def help(self, name: Optional[str] = None) -> None:
        """Print the description, default and current value of settings.

        Parameters
        ----------
        name : str, optional
            Name of the setting; all settings when omitted.

        Raises
        ------
        KeyError
            ``name`` is not a setting.
        """
        if name is not None and name not in self._defaults:
            raise KeyError("No configuration parameter %r" % (name,))
        for key in [name] if name is not None else list(self):
            print("%s\n    %s\n    default: %r, current: %r" % (
                key, self._descriptions[key], self._defaults[key], getattr(self, key)))

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._defaults:
            raise AttributeError("No configuration item %r" % (name,))
        object.__setattr__(self, name, value)

    @contextlib.contextmanager
    def set_temp(self, attr: str, value: Any) -> Iterator[None]:
        """Temporarily change a setting inside a ``with`` block.

        Parameters
        ----------
        attr : str
            Name of the setting.
        value : object
            Value used inside the block.
        """
        old = getattr(self, attr)
        setattr(self, attr, value)
        try:
            yield
        finally:
            setattr(self, attr, old)


#: The settings every hub and client of the package reads.
conf = Conf()
