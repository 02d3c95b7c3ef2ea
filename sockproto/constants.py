"""Service-IDs, Data-IDs, status codes and authentication states of socket_protocol.

The values are part of the wire format: a peer sends them as the
``status``, ``service_id`` and ``data_id`` of every message.
"""

from typing import Dict

__all__ = [
    "SID_AUTH_REQUEST", "SID_AUTH_RESPONSE",
    "SID_CHANNEL_NAME_REQUEST", "SID_CHANNEL_NAME_RESPONSE",
    "SID_READ_REQUEST", "SID_READ_RESPONSE",
    "SID_WRITE_REQUEST", "SID_WRITE_RESPONSE",
    "SID_EXECUTE_REQUEST", "SID_EXECUTE_RESPONSE",
    "DID_AUTH_SEED", "DID_AUTH_KEY", "DID_CHANNEL_NAME",
    "STATUS_OKAY", "STATUS_BUFFERING_UNHANDLED_REQUEST", "STATUS_CALLBACK_ERROR",
    "STATUS_AUTH_REQUIRED", "STATUS_SERVICE_OR_DATA_UNKNOWN", "STATUS_CHECKSUM_ERROR",
    "STATUS_OPERATION_NOT_PERMITTED",
    "AUTH_STATE_UNTRUSTED_CONNECTION", "AUTH_STATE_SEED_REQUESTED",
    "AUTH_STATE_SEED_TRANSFERRED", "AUTH_STATE_KEY_TRANSFERRED",
    "AUTH_STATE_TRUSTED_CONNECTION", "AUTH_STATE__NAMES",
]

#: SID for authentification request
SID_AUTH_REQUEST = 0
#: SID for authentification response
SID_AUTH_RESPONSE = 1
#: SID for channel name exchange request
SID_CHANNEL_NAME_REQUEST = 8
#: SID for channel name exchange response
SID_CHANNEL_NAME_RESPONSE = 9
#: SID for a read data request
SID_READ_REQUEST = 10
#: SID for read data response
SID_READ_RESPONSE = 11
#: SID for a write data request
SID_WRITE_REQUEST = 20
#: SID for a write data response
SID_WRITE_RESPONSE = 21
#: SID for a execute request
SID_EXECUTE_REQUEST = 30
#: SID for a execute response
SID_EXECUTE_RESPONSE = 31

#: DID for authentification (seed)
DID_AUTH_SEED = 0
#: DID for authentification (key)
DID_AUTH_KEY = 1
#: DID for channel name
DID_CHANNEL_NAME = 0

#: Status for 'okay'
STATUS_OKAY = 0
#: Status for 'unhandled request'
STATUS_BUFFERING_UNHANDLED_REQUEST = 1
#: Status for 'callback errors'
STATUS_CALLBACK_ERROR = 2
#: Status for 'authentification is required'
STATUS_AUTH_REQUIRED = 3
#: Status for 'service or data unknown'
STATUS_SERVICE_OR_DATA_UNKNOWN = 4
#: Status for 'checksum error'
STATUS_CHECKSUM_ERROR = 5
#: Status for 'operation not permitted'
STATUS_OPERATION_NOT_PERMITTED = 6

#: Authentification Status for an 'Untrusted Connection'
AUTH_STATE_UNTRUSTED_CONNECTION = 0
#: Authentification Status for 'Seed was requested'
AUTH_STATE_SEED_REQUESTED = 1
#: Authentification Status for 'Seed has been sent'
AUTH_STATE_SEED_TRANSFERRED = 2
#: Authentification Status for 'Key has been sent'
AUTH_STATE_KEY_TRANSFERRED = 3
#: Authentification Status for a 'Trusted Connection'
AUTH_STATE_TRUSTED_CONNECTION = 4

#: Authentification Status names for previous defined authentification states
AUTH_STATE__NAMES: Dict[int, str] = {
    AUTH_STATE_UNTRUSTED_CONNECTION: "Untrusted Connection",
    AUTH_STATE_SEED_REQUESTED: "Seed was requested",
    AUTH_STATE_SEED_TRANSFERRED: "Seed has been sent",
    AUTH_STATE_KEY_TRANSFERRED: "Key has been sent",
    AUTH_STATE_TRUSTED_CONNECTION: "Trusted Connection",
}

# Names used in log lines until add_service/add_status change them.
_DEFAULT_STATUS_NAMES: Dict[int, str] = {
    STATUS_OKAY: "Okay",
    STATUS_BUFFERING_UNHANDLED_REQUEST: "Request has no callback. Data buffered.",
    STATUS_CALLBACK_ERROR: "Callback error",
    STATUS_AUTH_REQUIRED: "Authentification required",
    STATUS_SERVICE_OR_DATA_UNKNOWN: "Service or Data unknown",
    STATUS_CHECKSUM_ERROR: "Checksum Error",
    STATUS_OPERATION_NOT_PERMITTED: "Operation not permitted",
}

# (request sid, response sid, request name, response name) known from the start.
_DEFAULT_SERVICES = (
    (SID_AUTH_REQUEST, SID_AUTH_RESPONSE, "Authentification Request", "Authentification Response"),
    (SID_CHANNEL_NAME_REQUEST, SID_CHANNEL_NAME_RESPONSE,
     "Channel Name Exchange Request", "Channel Name Exchange Response"),
    (SID_READ_REQUEST, SID_READ_RESPONSE, "Read Request", "Read Response"),
    (SID_WRITE_REQUEST, SID_WRITE_RESPONSE, "Write Request", "Write Response"),
    (SID_EXECUTE_REQUEST, SID_EXECUTE_RESPONSE, "Execute Request", "Execute Response"),
)

# (service ids, data id, name) known from the start.
_DEFAULT_DATA_NAMES = (
    ((SID_AUTH_REQUEST, SID_AUTH_RESPONSE), DID_AUTH_SEED, "Seed"),
    ((SID_AUTH_REQUEST, SID_AUTH_RESPONSE), DID_AUTH_KEY, "Key"),
    ((SID_CHANNEL_NAME_REQUEST, SID_CHANNEL_NAME_RESPONSE), DID_CHANNEL_NAME, "Name"),
)

#: Channel name used when neither side of a connection gives one.
DEFAULT_CHANNEL_NAME = "all_others"
