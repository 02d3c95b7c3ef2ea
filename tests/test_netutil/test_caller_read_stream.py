"""protocompat.netutil.CallerReadStream: a waiting caller reads the answer in its own thread."""
import logging
import socket
import threading
import time

import pytest
from netutil_helpers import WAIT, LineDecoder, Recorder, connected_pair, recv_exactly, started_loop

from protocompat.netutil import CallerReadStream, PeerClosed


@pytest.fixture
def loop():
    lp = started_loop()
    yield lp
    assert lp.stop(WAIT)


@pytest.fixture
def pair():
    ours, peer = connected_pair()
    yield ours, peer
    ours.close()
    peer.close()


def make_stream(loop, sock, recorder, **kwargs):
    stream = CallerReadStream(loop, sock, LineDecoder(), recorder.on_message, recorder.on_close,
                              **kwargs)
    stream.start()
    loop_turn(loop)  # the stream now watches its socket
    return stream


def loop_turn(loop):
    """Wait until the loop has run what was handed to it before."""
    done = threading.Event()
    loop.call_soon(done.set)
    assert done.wait(WAIT)


class Taker:
    """``take`` and ``done`` for read_here: takes messages until ``last`` arrives."""

    def __init__(self, last=None, refuse=()):
        self.taken = []
        self.threads = []
        self.last = last
        self.refuse = refuse

    def take(self, message):
        if message in self.refuse:
            return False
        self.taken.append(message)
        self.threads.append(threading.current_thread())
        return True

    def done(self):
        return self.last is not None and self.last in self.taken


def close_and_wait(stream, recorder):
    stream.close()
    assert recorder.wait_closed()


def test_the_caller_reads_the_answer_to_what_it_sent_in_its_own_thread(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    taker = Taker(last=b"pong")

    def ask():
        assert stream.write(b"ping\n")
        assert recv_exactly(peer, 5) == b"ping\n"
        peer.sendall(b"pong\n")

    assert stream.read_here(taker.take, taker.done, WAIT, first=ask)
    assert taker.taken == [b"pong"]
    assert taker.threads == [threading.current_thread()]
    assert rec.messages == []
    close_and_wait(stream, rec)


def test_input_after_read_here_returns_goes_to_on_message_on_the_loop(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    taker = Taker(last=b"answer")
    assert stream.read_here(taker.take, taker.done, WAIT,
                            first=lambda: peer.sendall(b"answer\n"))
    peer.sendall(b"news\n")
    assert rec.wait_messages(1)
    assert rec.messages == [b"news"]
    assert rec.threads == [loop.thread]
    close_and_wait(stream, rec)


def test_a_message_not_taken_and_every_later_one_reach_on_message_in_order(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    taker = Taker(last=b"c", refuse=(b"b",))
    assert stream.read_here(taker.take, taker.done, WAIT,
                            first=lambda: peer.sendall(b"a\nb\nc\nd\n"))
    peer.sendall(b"e\n")
    assert rec.wait_messages(4)
    assert taker.taken == [b"a"]
    assert rec.messages == [b"b", b"c", b"d", b"e"]
    assert set(rec.threads) == {loop.thread}
    close_and_wait(stream, rec)


def test_read_here_gives_reading_back_to_the_loop_after_its_timeout(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    taker = Taker(last=b"never")
    start = time.monotonic()
    assert stream.read_here(taker.take, taker.done, 0.05)
    assert time.monotonic() - start < WAIT
    peer.sendall(b"late\n")
    assert rec.wait_messages(1)
    assert rec.messages == [b"late"] and taker.taken == []
    close_and_wait(stream, rec)


def test_read_here_returns_at_once_when_done_already(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    start = time.monotonic()
    assert stream.read_here(lambda message: True, lambda: True, WAIT)
    assert time.monotonic() - start < WAIT / 2
    close_and_wait(stream, rec)


def test_read_here_is_refused_on_the_loop_thread(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    results = []
    loop.call_soon(lambda: results.append(stream.read_here(lambda m: True, lambda: False, WAIT)))
    loop_turn(loop)
    assert results == [False]
    close_and_wait(stream, rec)


def test_read_here_is_refused_on_a_closed_or_paused_stream(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    stream.pause_reading()
    loop_turn(loop)
    assert not stream.read_here(lambda m: True, lambda: False, WAIT)
    close_and_wait(stream, rec)
    assert not stream.read_here(lambda m: True, lambda: False, WAIT)


class _LoopWithoutAnyThreadInterest:
    """A stand-in loop whose selector takes interest changes on its own thread only."""

    interest_from_any_thread = False

    def __init__(self, loop):
        self._loop = loop

    def __getattr__(self, name):
        return getattr(self._loop, name)


def test_read_here_is_refused_when_the_loop_takes_interest_changes_on_its_thread_only(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(_LoopWithoutAnyThreadInterest(loop), ours, rec)
    assert not stream.read_here(lambda m: True, lambda: False, WAIT)
    peer.sendall(b"x\n")
    assert rec.wait_messages(1)
    close_and_wait(stream, rec)


def test_the_loop_selector_takes_interest_changes_from_any_thread_where_the_kernel_keeps_them(loop):
    kernel_kept = ("EpollSelector", "KqueueSelector", "DevpollSelector")
    assert loop.interest_from_any_thread == (type(loop.selector).__name__ in kernel_kept)


def test_first_raising_gives_reading_back_and_the_error_propagates(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)

    def fail():
        raise RuntimeError("cannot send")

    with pytest.raises(RuntimeError, match="cannot send"):
        stream.read_here(lambda m: True, lambda: False, WAIT, first=fail)
    peer.sendall(b"x\n")
    assert rec.wait_messages(1)
    close_and_wait(stream, rec)


def test_the_peer_closing_while_the_caller_reads_closes_the_stream_with_peer_closed(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    taker = Taker(last=b"never")
    assert stream.read_here(taker.take, taker.done, WAIT, first=peer.close)
    assert rec.wait_closed()
    assert isinstance(rec.closes[0], PeerClosed)
    assert rec.close_threads == [loop.thread]


def test_closing_the_stream_while_the_caller_reads_wakes_it_and_closes_the_socket(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    taker = Taker(last=b"never")
    started = threading.Event()

    def first():
        started.set()

    closer = threading.Thread(target=lambda: started.wait(WAIT) and stream.close())
    closer.start()
    start = time.monotonic()
    assert stream.read_here(taker.take, taker.done, 30.0, first=first)
    assert time.monotonic() - start < WAIT
    closer.join(WAIT)
    assert rec.wait_closed()
    assert rec.closes == [None]
    assert rec.close_threads == [loop.thread]
    assert ours.fileno() == -1
    assert recv_exactly(peer, 1) == b""


def test_bad_input_read_by_the_caller_closes_the_stream_with_the_decoder_error(loop, pair, caplog):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    taker = Taker(last=b"never")
    with caplog.at_level(logging.WARNING, logger="protocompat.netutil"):
        assert stream.read_here(taker.take, taker.done, WAIT,
                                first=lambda: peer.sendall(b"BAD\n"))
        assert rec.wait_closed()
    assert isinstance(rec.closes[0], ValueError)
    assert rec.close_threads == [loop.thread]
    assert "bad line" in caplog.text


def test_output_queued_while_the_caller_reads_is_sent_and_reading_comes_back(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec, max_output=1 << 30)
    block = b"y" * (8 << 20)  # more than the socket buffers take at once
    taker = Taker(last=b"got it")
    received = []

    def peer_side():
        received.append(recv_exactly(peer, len(block), timeout=30))
        peer.sendall(b"got it\n")

    reader = threading.Thread(target=peer_side)

    def first():
        assert stream.write(block)
        reader.start()

    assert stream.read_here(taker.take, taker.done, 30.0, first=first)
    reader.join(WAIT)
    assert received == [block]
    peer.sendall(b"after\n")
    assert rec.wait_messages(1)
    assert rec.messages == [b"after"]
    close_and_wait(stream, rec)


def test_read_here_is_refused_to_a_second_thread_while_one_reads(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    second = []

    def other_thread():
        second.append(stream.read_here(lambda m: True, lambda: False, WAIT))

    def first():
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join(WAIT)

    assert stream.read_here(lambda m: True, lambda: bool(second), WAIT, first=first)
    assert second == [False]
    close_and_wait(stream, rec)
