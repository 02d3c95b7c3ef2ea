"""The message object of socket_protocol."""

import inspect
from typing import Any

__all__ = ["data_storage"]


class data_storage(dict):
    """This is a storage object for socket_protocol messages.

    A :class:`dict` with the keys ``"status"``, ``"service_id"``,
    ``"data_id"`` and ``"data"``; it is built like a dict.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`dict`, e.g. ``data_storage(status=0, service_id=10,
        data_id=1, data=None)``.

    Notes
    -----
    The keys are:

    * ``status`` (int): the message status.
    * ``service_id`` (int): the Service-ID.
    * ``data_id`` (int): the Data-ID.
    * ``data`` (any): the transferred data.
    """

    KEY_STATUS = "status"
    KEY_SERVICE_ID = "service_id"
    KEY_DATA_ID = "data_id"
    KEY_DATA = "data"

    def get_status(self, default: Any = None) -> Any:
        """This Method returns the message status.

        Parameters
        ----------
        default : any, optional
            The default value, if no status is available.

        Returns
        -------
        status : int or any
        """
        return self.get(self.KEY_STATUS, default)

    def get_service_id(self, default: Any = None) -> Any:
        """This Method returns the message Service-ID.

        Parameters
        ----------
        default : any, optional
            The default value, if no Service-ID is available.

        Returns
        -------
        service_id : int or any
        """
        return self.get(self.KEY_SERVICE_ID, default)

    def get_data_id(self, default: Any = None) -> Any:
        """This Method returns the message Data-ID.

        Parameters
        ----------
        default : any, optional
            The default value, if no Data-ID is available.

        Returns
        -------
        data_id : int or any
        """
        return self.get(self.KEY_DATA_ID, default)

    def get_data(self, default: Any = None) -> Any:
        """This Method returns the message data.

        Parameters
        ----------
        default : any, optional
            The default value, if no data is available.

        Returns
        -------
        data : any
        """
        return self.get(self.KEY_DATA, default)


# dict's constructor has no signature that inspect can read; state the one
# data_storage takes (an attribute, so building messages costs nothing extra).
data_storage.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
    inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
])
