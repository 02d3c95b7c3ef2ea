"""The receive buffer: bounded per pair of ids and connection, per connection and in total."""
import threading

import pytest

from sockproto._buffer import (
    MESSAGE_OVERHEAD, REFUSED_BUFFER_FULL, REFUSED_CONNECTION_FULL, STORED, STORED_OLDEST_DROPPED,
    ReceiveBuffer,
)
from sockproto.storage import data_storage
from sockproto_testing import WAIT

KEY = (11, 1)
BIG = 10 ** 9


def _msg(data, key=KEY):
    return data_storage(status=0, service_id=key[0], data_id=key[1], data=data)


def _put(buffer, account, data, size=0, key=KEY):
    return buffer.put(account, key, _msg(data, key), size)


def _drain(buffer, key=KEY):
    taken = []
    while True:
        msg = buffer.take(key, 0)
        if msg is None:
            return taken
        taken.append(msg.get_data())


def test_messages_of_one_pair_are_taken_oldest_first():
    buffer = ReceiveBuffer(10, BIG, BIG)
    account = buffer.open_account()
    for number in range(3):
        assert _put(buffer, account, number) == STORED
    assert _drain(buffer) == [0, 1, 2]


def test_full_pair_drops_the_oldest_message_of_the_same_connection_only():
    buffer = ReceiveBuffer(2, BIG, BIG)
    first, second = buffer.open_account(), buffer.open_account()
    _put(buffer, first, "first-a")
    _put(buffer, second, "second-a")
    _put(buffer, second, "second-b")
    assert _put(buffer, second, "second-c") == STORED_OLDEST_DROPPED
    assert _drain(buffer) == ["first-a", "second-b", "second-c"]


def test_message_beyond_the_connections_share_is_refused():
    buffer = ReceiveBuffer(10, 2 * (100 + MESSAGE_OVERHEAD), BIG)
    account, other = buffer.open_account(), buffer.open_account()
    assert _put(buffer, account, 1, 100) == STORED
    assert _put(buffer, account, 2, 100) == STORED
    assert _put(buffer, account, 3, 100) == REFUSED_CONNECTION_FULL
    assert _put(buffer, other, 4, 100) == STORED
    assert _drain(buffer) == [1, 2, 4]


def test_message_beyond_the_total_is_refused():
    buffer = ReceiveBuffer(10, BIG, 2 * (100 + MESSAGE_OVERHEAD))
    first, second = buffer.open_account(), buffer.open_account()
    _put(buffer, first, 1, 100)
    _put(buffer, second, 2, 100)
    assert _put(buffer, second, 3, 100) == REFUSED_BUFFER_FULL
    assert buffer.take(KEY, 0).get_data() == 1
    assert _put(buffer, second, 3, 100) == STORED


def test_taking_a_message_gives_its_room_back():
    buffer = ReceiveBuffer(10, 100 + MESSAGE_OVERHEAD, BIG)
    account = buffer.open_account()
    _put(buffer, account, 1, 100)
    buffer.take(KEY, 0)
    assert (buffer.size, account.size, account.keys) == (0, 0, {})
    assert _put(buffer, account, 2, 100) == STORED


def test_discard_drops_only_that_connections_messages():
    buffer = ReceiveBuffer(10, BIG, BIG)
    leaving, staying = buffer.open_account(), buffer.open_account()
    for key in (KEY, (11, 2)):
        _put(buffer, leaving, "leaving", 50, key)
        _put(buffer, staying, "staying", 70, key)
    assert buffer.discard(leaving) == 2
    assert buffer.size == staying.size == 2 * (70 + MESSAGE_OVERHEAD)
    assert _drain(buffer) == ["staying"]
    assert _drain(buffer, (11, 2)) == ["staying"]


def test_take_waits_for_a_message():
    buffer = ReceiveBuffer(10, BIG, BIG)
    account = buffer.open_account()
    putter = threading.Timer(0.05, _put, (buffer, account, "late"))
    putter.start()
    try:
        assert buffer.take(KEY, WAIT).get_data() == "late"
    finally:
        putter.join(WAIT)


def test_take_returns_none_after_the_timeout():
    assert ReceiveBuffer(1, 1, 1).take(KEY, 0.01) is None


@pytest.mark.parametrize("limits", [(0, 1, 1), (1, 0, 1), (1, 1, -5)])
def test_limits_below_one_are_refused_with_their_value(limits):
    with pytest.raises(ValueError, match="must be at least 1, not %d" % min(limits)):
        ReceiveBuffer(*limits)
