"""Public import paths katcp code uses, and the one message size limit."""
import pytest


@pytest.mark.parametrize("path, name", [
    ("katcp_compat.core", "Message"), ("katcp_compat.core", "MessageParser"),
    ("katcp_compat.core", "Sensor"), ("katcp_compat.core", "Reading"),
    ("katcp_compat.core", "ProtocolFlags"), ("katcp_compat.core", "DeviceMetaclass"),
    ("katcp_compat.core", "FailReply"), ("katcp_compat.core", "MAX_MSG_SIZE"),
    ("katcp_compat.core", "LineDecoder"), ("katcp_compat.server", "MAX_MSG_SIZE"),
    ("katcp_compat", "GenericSensorTree"), ("katcp_compat.kattypes", "Int"),
])
def test_public_import_paths_work(path, name):
    module = __import__(path, fromlist=[name])
    assert getattr(module, name) is not None


def test_message_size_limit_is_one_constant():
    from katcp_compat import client, core, server
    assert core.MAX_MSG_SIZE == server.MAX_MSG_SIZE == client.DeviceClient.MAX_MSG_SIZE
    assert core.MAX_MSG_SIZE == 2 * 1024 * 1024
