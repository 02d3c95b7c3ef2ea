"""protocompat.netutil.Stream: decoding on the loop, thread-safe bounded output, one close path."""
import logging
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
from netutil_helpers import WAIT, LineDecoder, Recorder, connected_pair, recv_exactly, started_loop

from protocompat.netutil import OutputOverflow, PeerClosed, Producer, Stream


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
    kwargs.setdefault("decoder", LineDecoder())
    stream = Stream(loop, sock, on_message=recorder.on_message, on_close=recorder.on_close, **kwargs)
    stream.start()
    return stream


def close_and_wait(stream, recorder):
    stream.close()
    assert recorder.wait_closed()


# -- input ---------------------------------------------------------------------

@pytest.mark.parametrize("cut", [1, 2, 3, 7, 1000])
def test_messages_arrive_whole_and_in_order_however_the_bytes_are_cut(loop, pair, cut):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    data = b"".join(b"line %d\n" % i for i in range(50))
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for start in range(0, len(data), cut):
        peer.sendall(data[start:start + cut])
    assert rec.wait_messages(50)
    assert rec.messages == [b"line %d" % i for i in range(50)]
    assert set(rec.threads) == {loop.thread}
    close_and_wait(stream, rec)


def test_without_decoder_each_chunk_received_is_a_message(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec, decoder=None)
    peer.sendall(b"raw bytes")
    assert rec.wait_messages(1)
    assert b"".join(rec.messages) == b"raw bytes"
    close_and_wait(stream, rec)


def test_peer_closing_closes_the_stream_with_peer_closed(loop, pair):
    ours, peer = pair
    rec = Recorder()
    make_stream(loop, ours, rec)
    peer.close()
    assert rec.wait_closed()
    assert isinstance(rec.closes[0], PeerClosed)
    assert rec.close_threads == [loop.thread]


def test_decoder_error_closes_the_stream_with_that_error(loop, pair, caplog):
    ours, peer = pair
    rec = Recorder()
    make_stream(loop, ours, rec)
    with caplog.at_level(logging.WARNING, logger="protocompat.netutil"):
        peer.sendall(b"good\nBAD\n")
        assert rec.wait_closed()
    assert isinstance(rec.closes[0], ValueError)
    assert "bad line" in caplog.text
    assert peer.recv(10) == b""  # the socket was closed


def test_with_on_eof_the_stream_stays_open_to_answer(loop, pair):
    ours, peer = pair
    rec = Recorder()
    eof = threading.Event()
    stream = make_stream(loop, ours, rec, on_eof=eof.set)
    peer.sendall(b"question\n")
    peer.shutdown(socket.SHUT_WR)
    assert eof.wait(WAIT)
    assert rec.messages == [b"question"]
    assert stream.write(b"answer\n")
    stream.close_after_flush()
    assert rec.wait_closed()
    assert rec.closes == [None]
    assert recv_exactly(peer, 7) == b"answer\n"


def test_paused_stream_delivers_nothing_until_resumed_then_everything_in_order(loop, pair):
    ours, peer = pair
    rec = Recorder()
    paused = threading.Event()

    def on_message(message):
        rec.on_message(message)
        if message == b"pause":
            stream.pause_reading()
            paused.set()

    stream = Stream(loop, ours, LineDecoder(), on_message, rec.on_close)
    stream.start()
    peer.sendall(b"one\npause\ntwo\nthree\n")
    assert paused.wait(WAIT)
    peer.sendall(b"four\n")
    # While paused, a round trip through the loop delivers nothing more.
    done = threading.Event()
    loop.call_soon(done.set)
    assert done.wait(WAIT)
    assert rec.messages == [b"one", b"pause"]
    assert stream.paused
    stream.resume_reading()
    assert rec.wait_messages(5)
    assert rec.messages == [b"one", b"pause", b"two", b"three", b"four"]
    close_and_wait(stream, rec)


# -- output --------------------------------------------------------------------

def test_write_sends_from_the_callers_thread_while_the_loop_is_busy(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    release = threading.Event()
    loop.call_soon(release.wait, WAIT)  # the loop thread is blocked until released
    try:
        assert stream.write(b"direct\n")
        assert recv_exactly(peer, 7) == b"direct\n"
    finally:
        release.set()
    close_and_wait(stream, rec)


def test_deferred_writes_are_sent_by_the_loop(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    for i in range(100):
        assert stream.write(b"%03d\n" % i, defer=True)
    assert recv_exactly(peer, 400) == b"".join(b"%03d\n" % i for i in range(100))
    close_and_wait(stream, rec)


def test_writes_from_many_threads_arrive_whole_and_in_each_threads_order(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec, max_output=1 << 30)
    count, size = 300, 4000

    def writer(tag):
        for i in range(count):
            assert stream.write(b"%s %05d " % (tag, i) + b"x" * size + b"\n")

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in (b"a", b"b", b"c")]
    for t in threads:
        t.start()
    total = 3 * count * (size + 9)
    received = recv_exactly(peer, total, timeout=30)
    for t in threads:
        t.join(WAIT)
    lines = received.split(b"\n")[:-1]
    assert len(lines) == 3 * count
    for tag in (b"a", b"b", b"c"):
        numbers = [int(line[2:7]) for line in lines if line[:1] == tag]
        assert numbers == list(range(count))
    assert all(len(line) == size + 8 for line in lines)
    close_and_wait(stream, rec)


def test_output_past_the_bound_closes_the_stream_with_output_overflow(loop, pair, caplog):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec, max_output=256 * 1024)
    block = b"x" * 65536
    with caplog.at_level(logging.WARNING, logger="protocompat.netutil"):
        for _ in range(10000):  # the peer never reads
            if not stream.write(block):
                break
        else:
            pytest.fail("the output bound never refused a write")
        assert rec.wait_closed()
    assert isinstance(rec.closes[0], OutputOverflow)
    assert "does not read" in caplog.text
    assert stream.output_size == 0
    assert not stream.write(b"more")


def test_custom_overflow_policy_refuses_the_write_and_keeps_the_stream(loop, pair):
    ours, peer = pair
    rec = Recorder()
    refused = []
    stream = make_stream(loop, ours, rec, max_output=128 * 1024, on_overflow=refused.append)
    block = b"y" * 65536
    accepted = 0
    while stream.write(block):
        accepted += 1
        assert accepted < 10000
    assert refused == [stream]
    assert not stream.closed
    assert recv_exactly(peer, accepted * len(block), timeout=30) == block * accepted
    close_and_wait(stream, rec)


def test_one_write_larger_than_the_bound_into_an_empty_queue_is_taken(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec, max_output=1024)
    big = bytes(range(256)) * 8192  # 2 MiB
    assert stream.write(big)
    assert recv_exactly(peer, len(big), timeout=30) == big
    close_and_wait(stream, rec)


class ChunkProducer(Producer):
    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.closed = threading.Event()

    def read(self, size):
        return self.chunks.pop(0) if self.chunks else b""

    def close(self):
        self.closed.set()


def test_producers_are_sent_in_queue_order_and_closed_when_done(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    producer = ChunkProducer([b"p1", b"p2" * 100000, b"p3"])
    assert stream.write(b"before|")
    assert stream.write(producer)
    assert stream.write(b"|after")
    expected = b"before|" + b"p1" + b"p2" * 100000 + b"p3" + b"|after"
    assert recv_exactly(peer, len(expected), timeout=30) == expected
    assert producer.closed.wait(WAIT)
    close_and_wait(stream, rec)


def test_closing_returns_unsent_items_whole_and_closes_producers(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec, max_output=1 << 30)
    frames = [bytes([65 + i % 26]) * 300000 for i in range(20)]  # more than the kernel buffers
    for frame in frames:
        assert stream.write(frame)
    producer = ChunkProducer([b"never sent"])
    assert stream.write(producer)
    close_and_wait(stream, rec)
    unsent = stream.unsent()
    assert unsent[-1] is producer and producer.closed.is_set()
    tail = unsent[:-1]
    assert tail and tail == frames[len(frames) - len(tail):]


def test_close_from_another_thread_refuses_writes_at_once_and_calls_on_close_once(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    threads = [threading.Thread(target=stream.close) for _ in range(8)]
    for t in threads:
        t.start()
    assert not stream.write(b"late\n")
    for t in threads:
        t.join(WAIT)
    assert rec.wait_closed()
    done = threading.Event()
    loop.call_soon(done.set)
    assert done.wait(WAIT)
    assert rec.closes == [None]
    assert rec.close_threads == [loop.thread]
    assert stream.closed


def test_close_after_flush_sends_everything_queued_first(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec, max_output=1 << 30)
    data = b"z" * (4 << 20)
    assert stream.write(data)
    stream.close_after_flush()
    assert not stream.write(b"refused")
    assert recv_exactly(peer, len(data), timeout=30) == data
    assert rec.wait_closed()
    assert rec.closes == [None]
    peer.settimeout(WAIT)
    assert peer.recv(1) == b""


def test_close_after_the_loop_has_ended_still_closes_the_socket(pair):
    ours, peer = pair
    lp = started_loop()
    rec = Recorder()
    stream = make_stream(lp, ours, rec)
    assert lp.stop(WAIT)
    stream.close()
    assert rec.closes == [None]
    assert ours.fileno() == -1


def test_write_error_closes_the_stream_with_the_os_error(loop, pair):
    ours, peer = pair
    rec = Recorder()
    stream = make_stream(loop, ours, rec)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    peer.close()  # a reset: the next sends fail
    for _ in range(100):
        if not stream.write(b"x" * 1000):
            break
    assert rec.wait_closed()
    assert isinstance(rec.closes[0], (OSError, PeerClosed))


# -- TLS -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def test_tls_stream_does_its_handshake_on_the_loop_and_echoes(loop, pair, certificate):
    cert, key = certificate
    ours, peer = pair
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    tls = server_context.wrap_socket(ours, server_side=True, do_handshake_on_connect=False)
    rec = Recorder()

    def echo(line):
        rec.on_message(line)
        stream.write(line.upper() + b"\n")

    stream = Stream(loop, tls, LineDecoder(), echo, rec.on_close)
    stream.start()
    client_context = ssl.create_default_context(cafile=cert)
    peer.settimeout(WAIT)
    with client_context.wrap_socket(peer, server_hostname="127.0.0.1") as client:
        client.sendall(b"hello\nworld\n")
        received = b""
        while received.count(b"\n") < 2:
            received += client.recv(100)
        assert received == b"HELLO\nWORLD\n"
    assert rec.wait_closed()


class CountingLoop:
    """A loop for a Stream that counts the calls handed to it from other threads."""

    def __init__(self, loop):
        self._loop = loop
        self.handed = 0
        self.register = loop.register
        self.modify = loop.modify
        self.unregister = loop.unregister
        self.in_loop_thread = loop.in_loop_thread

    def call_soon(self, callback, *args):
        self.handed += 1
        self._loop.call_soon(callback, *args)


def test_writes_while_output_is_queued_do_not_wake_the_loop_again(loop, pair):
    ours, peer = pair
    rec = Recorder()
    counting = CountingLoop(loop)
    stream = make_stream(counting, ours, rec, max_output=1 << 30)
    block = b"q" * 65536
    while stream.output_size == 0:  # the peer never reads: soon the kernel takes no more
        assert stream.write(block)
    # Let the loop flush once and watch for write readiness.
    done = threading.Event()
    loop.call_soon(done.set)
    assert done.wait(WAIT)
    handed = counting.handed
    for _ in range(50):
        assert stream.write(b"more")
    assert counting.handed == handed
    close_and_wait(stream, rec)
