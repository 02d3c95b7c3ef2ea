"""A sensor reading: :class:`Reading` (re-exported by :mod:`katcp_compat.core`, as in katcp).

A leaf module: it imports nothing from the package.
"""

from collections import namedtuple

__all__ = ["Reading"]


class Reading(namedtuple("Reading", "timestamp status value")):
    """A sensor reading: ``(timestamp, status, value)``.

    Also available as ``katcp_compat.core.Reading``, where katcp has it.

    Attributes
    ----------
    timestamp : float
        Seconds since the Unix epoch at which the value was determined.
    status : int
        A sensor status constant (``Sensor.NOMINAL`` ...).
    value : object
        The value, of the sensor type's Python type.
    """

    __slots__ = ()
