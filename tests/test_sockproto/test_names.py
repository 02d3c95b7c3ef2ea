"""`import sockproto as socket_protocol` gives every documented name with its value."""
import inspect
import logging

import pytest

import sockproto as socket_protocol
from sockproto import memory, protocol, tcp

DOCUMENTED_VALUES = {
    "AUTH_STATE_UNTRUSTED_CONNECTION": 0, "AUTH_STATE_SEED_REQUESTED": 1,
    "AUTH_STATE_SEED_TRANSFERRED": 2, "AUTH_STATE_KEY_TRANSFERRED": 3,
    "AUTH_STATE_TRUSTED_CONNECTION": 4,
    "DID_AUTH_SEED": 0, "DID_AUTH_KEY": 1, "DID_CHANNEL_NAME": 0,
    "SID_AUTH_REQUEST": 0, "SID_AUTH_RESPONSE": 1,
    "SID_CHANNEL_NAME_REQUEST": 8, "SID_CHANNEL_NAME_RESPONSE": 9,
    "SID_READ_REQUEST": 10, "SID_READ_RESPONSE": 11,
    "SID_WRITE_REQUEST": 20, "SID_WRITE_RESPONSE": 21,
    "SID_EXECUTE_REQUEST": 30, "SID_EXECUTE_RESPONSE": 31,
    "STATUS_OKAY": 0, "STATUS_BUFFERING_UNHANDLED_REQUEST": 1, "STATUS_CALLBACK_ERROR": 2,
    "STATUS_AUTH_REQUIRED": 3, "STATUS_SERVICE_OR_DATA_UNKNOWN": 4, "STATUS_CHECKSUM_ERROR": 5,
    "STATUS_OPERATION_NOT_PERMITTED": 6,
}


@pytest.mark.parametrize("module", [socket_protocol, protocol], ids=["package", "protocol"])
@pytest.mark.parametrize("name,value", sorted(DOCUMENTED_VALUES.items()))
def test_constant_has_documented_value(module, name, value):
    assert getattr(module, name) == value


@pytest.mark.parametrize("module", [socket_protocol, protocol], ids=["package", "protocol"])
def test_auth_state_names(module):
    assert module.AUTH_STATE__NAMES == {
        0: "Untrusted Connection", 1: "Seed was requested", 2: "Seed has been sent",
        3: "Key has been sent", 4: "Trusted Connection"}


@pytest.mark.parametrize("name", ["RequestSidExistsError", "ResponseSidExistsError", "data_storage",
                                  "pure_json_protocol", "struct_json_protocol"])
def test_class_is_reachable_from_package_and_protocol_module(name):
    assert getattr(socket_protocol, name) is getattr(protocol, name)


def test_errors_are_exceptions():
    assert issubclass(socket_protocol.RequestSidExistsError, Exception)
    assert issubclass(socket_protocol.ResponseSidExistsError, Exception)


def test_pure_json_protocol_signature():
    params = inspect.signature(socket_protocol.pure_json_protocol).parameters
    assert [(p.name, p.default) for p in params.values()] == [
        ("comm_instance", inspect.Parameter.empty), ("secret", None), ("auto_auth", False),
        ("channel_name", None)]


@pytest.mark.parametrize("method,expected", [
    ("send", [("service_id", inspect.Parameter.empty), ("data_id", inspect.Parameter.empty),
              ("data", inspect.Parameter.empty), ("status", 0), ("timeout", 2),
              ("log_lvl", logging.INFO)]),
    ("receive", [("service_id", inspect.Parameter.empty), ("data_id", inspect.Parameter.empty),
                 ("timeout", 1)]),
    ("authentificate", [("timeout", 2)]),
    ("add_service", [("req_sid", inspect.Parameter.empty), ("resp_sid", inspect.Parameter.empty),
                     ("req_name", None), ("resp_name", None)]),
    ("add_data", [("service_id", inspect.Parameter.empty), ("data_id", inspect.Parameter.empty),
                  ("name", inspect.Parameter.empty)]),
    ("add_status", [("status", inspect.Parameter.empty), ("name", inspect.Parameter.empty)]),
    ("add_msg_to_auth_whitelist_", [("service_id", inspect.Parameter.empty),
                                    ("data_id", inspect.Parameter.empty)]),
    ("check_authentification_state", []),
    ("connection_established", []),
    ("is_connected", []),
    ("reconnect", []),
])
def test_method_signature(method, expected):
    params = list(inspect.signature(getattr(socket_protocol.pure_json_protocol, method)).parameters.values())
    assert [(p.name, p.default) for p in params[1:]] == expected


def test_register_callback_takes_extra_args():
    params = inspect.signature(socket_protocol.pure_json_protocol.register_callback).parameters
    kinds = [p.kind for p in params.values()]
    assert list(params)[:4] == ["self", "service_id", "data_id", "callback"]
    assert inspect.Parameter.VAR_POSITIONAL in kinds and inspect.Parameter.VAR_KEYWORD in kinds


def test_struct_json_protocol_is_a_pure_json_protocol():
    assert issubclass(socket_protocol.struct_json_protocol, socket_protocol.pure_json_protocol)


@pytest.mark.parametrize("getter,key", [("get_status", "status"), ("get_service_id", "service_id"),
                                        ("get_data_id", "data_id"), ("get_data", "data")])
def test_data_storage_getters(getter, key):
    msg = socket_protocol.data_storage({key: "value"})
    assert getattr(msg, getter)() == "value"
    assert getattr(socket_protocol.data_storage(), getter)("default") == "default"
    assert getattr(socket_protocol.data_storage(), getter)() is None


def test_data_storage_is_a_dict_built_from_kwargs():
    msg = socket_protocol.data_storage(status=0, service_id=10, data_id=1, data=[1])
    assert msg == {"status": 0, "service_id": 10, "data_id": 1, "data": [1]}


def test_data_storage_signature_is_that_of_the_documentation():
    params = inspect.signature(socket_protocol.data_storage).parameters.values()
    assert [(p.name, p.kind) for p in params] == [
        ("args", inspect.Parameter.VAR_POSITIONAL), ("kwargs", inspect.Parameter.VAR_KEYWORD)]


def test_struct_json_protocol_signature():
    params = inspect.signature(socket_protocol.struct_json_protocol).parameters.values()
    assert [(p.name, p.kind) for p in params] == [
        ("args", inspect.Parameter.VAR_POSITIONAL), ("kwargs", inspect.Parameter.VAR_KEYWORD)]


COMM_INTERFACE = ["init_channel_name", "IS_CLIENT", "is_connected", "reconnect", "register_callback",
                  "register_connect_callback", "register_disconnect_callback", "send"]


@pytest.mark.parametrize("comm_class", [tcp.tcp_client_stp, tcp.tcp_server_stp, tcp.tcp_server_connection,
                                        memory.memory_comm])
def test_comm_instances_have_the_documented_comm_interface(comm_class):
    assert [name for name in COMM_INTERFACE if not hasattr(comm_class, name)] == []


@pytest.mark.parametrize("comm_class,is_client", [
    (tcp.tcp_client_stp, True), (tcp.tcp_server_stp, False), (tcp.tcp_server_connection, False)])
def test_tcp_comm_classes_tell_client_from_server(comm_class, is_client):
    assert comm_class.IS_CLIENT is is_client
