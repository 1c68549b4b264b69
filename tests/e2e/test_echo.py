"""chat-cli --echo: every message comes back intact, with its opcode.

Mirrors Autobahn groups 1 (framing: payload lengths around the 7/16/64-bit
boundaries), 9 (large messages and many small ones, in reasonable time) and
10 (fragmentation is not meaning), plus --max-message (1009) and bytes fed in
awkward chunkings.  Normal traffic goes through the `websockets` library;
exact frame checks through wsraw.
"""
import asyncio
import os
import time

import pytest
import websockets

import wsraw
from wsraw import OP_BINARY, OP_CONT, OP_TEXT, RawWS, encode_frame

LENGTHS = [0, 1, 125, 126, 127, 128, 65535, 65536, 65537]


@pytest.fixture
def server(start_server):
    s = start_server("--echo")
    yield s
    assert s.alive(), "chat-cli died during the test"


def run(coro, timeout=8):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def connect(url, **kw):
    kw.setdefault("open_timeout", 3)
    kw.setdefault("close_timeout", 2)
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    return websockets.connect(url, **kw)


def text_of(n):
    # Mixed 1- to 4-byte UTF-8 characters, exactly n bytes.
    unit = "aé€😀".encode("utf-8")  # 1+2+3+4 = 10 bytes
    data = unit * (n // 10) + b"x" * (n % 10)
    assert len(data) == n
    return data


def binary_of(n):
    return bytes(range(256)) * (n // 256) + bytes(range(n % 256))


# --- Autobahn 1: framing, through the websockets library ---------------------

@pytest.mark.parametrize("n", LENGTHS)
def test_text_roundtrip_websockets(server, n):
    async def go():
        async with connect(server.url) as ws:
            msg = text_of(n).decode("utf-8")
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 3)
            assert isinstance(got, str)
            assert got == msg
    run(go())


@pytest.mark.parametrize("n", LENGTHS)
def test_binary_roundtrip_websockets(server, n):
    async def go():
        async with connect(server.url) as ws:
            msg = binary_of(n)
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 3)
            assert isinstance(got, bytes)
            assert got == msg
    run(go())


# --- Autobahn 1: the exact frames the server writes ---------------------------

@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_raw_frames_are_unmasked_minimal_and_intact(server, opcode, n):
    payload = text_of(n) if opcode == OP_TEXT else binary_of(n)
    with RawWS.open(server) as ws:
        ws.send_frame(opcode, payload)
        frames = []
        assert ws.recv_message(frames=frames) == (opcode, payload)
        for f in frames:
            # RFC 6455 5.1: a server MUST NOT mask; 5.2: the minimal length encoding MUST be used.
            assert not f.masked and f.rsv == 0
            assert wsraw.is_minimal_length(f), f


def test_message_order_kept_text_binary_interleaved(server):
    with RawWS.open(server) as ws:
        sent = []
        for i in range(50):
            op = OP_TEXT if i % 2 else OP_BINARY
            payload = (b"msg %d " % i) * (i + 1)
            sent.append((op, payload))
            ws.send_frame(op, payload)
        for expected in sent:
            assert ws.recv_message() == expected


def test_empty_messages_and_zero_length_frames(server):
    with RawWS.open(server) as ws:
        ws.send_frame(OP_TEXT, b"")
        assert ws.recv_message() == (OP_TEXT, b"")
        ws.send_frame(OP_BINARY, b"")
        assert ws.recv_message() == (OP_BINARY, b"")
        # A message whose every fragment is empty, and one with empty fragments in the middle.
        ws.send_frame(OP_TEXT, b"", fin=False)
        ws.send_frame(OP_CONT, b"", fin=False)
        ws.send_frame(OP_CONT, b"", fin=True)
        assert ws.recv_message() == (OP_TEXT, b"")
        ws.send_frame(OP_BINARY, b"ab", fin=False)
        ws.send_frame(OP_CONT, b"", fin=False)
        ws.send_frame(OP_CONT, b"cd", fin=True)
        assert ws.recv_message() == (OP_BINARY, b"abcd")


# --- awkward chunkings (wslay's test technique) -------------------------------

def test_frame_sent_one_byte_at_a_time(server):
    with RawWS.open(server) as ws:
        for payload in (b"hello", b"x" * 200, b"y" * 70000):
            delay = 0.001 if len(payload) < 1000 else 0
            ws.send(encode_frame(OP_TEXT, payload), chunk=1 if len(payload) < 1000 else 7, delay=delay)
            assert ws.recv_message() == (OP_TEXT, payload)


def test_handshake_and_frames_one_byte_at_a_time(server):
    with RawWS(server.host, server.port) as ws:
        ws.handshake(chunk=1, delay=0.0005)
        frame = encode_frame(OP_BINARY, b"\x00\xff" * 3)
        ws.send(frame, chunk=1, delay=0.001)
        assert ws.recv_message() == (OP_BINARY, b"\x00\xff" * 3)


@pytest.mark.parametrize("chunk", [2, 3, 5, 9, 14, 1000])
def test_many_frames_in_odd_chunks(server, chunk):
    # Frame boundaries fall anywhere inside the writes: in headers, masks, payloads.
    msgs = [binary_of(n) for n in (0, 1, 2, 125, 126, 127, 300, 4000)]
    stream = b"".join(encode_frame(OP_BINARY, m) for m in msgs)
    with RawWS.open(server) as ws:
        ws.send(stream, chunk=chunk, delay=0.0002 if chunk < 100 else 0)
        for m in msgs:
            assert ws.recv_message() == (OP_BINARY, m)


def test_many_frames_in_one_write(server):
    msgs = [("m%d" % i).encode() for i in range(300)]
    with RawWS.open(server) as ws:
        ws.send(b"".join(encode_frame(OP_TEXT, m) for m in msgs))
        for m in msgs:
            assert ws.recv_message() == (OP_TEXT, m)


# --- Autobahn 9: large messages, many messages --------------------------------

def test_16_mib_text_message_echoes_intact(start_server):
    s = start_server("--echo", "--max-message", "20000000")
    msg = text_of(16 * 1024 * 1024).decode("utf-8")  # 16 MiB of mixed 1- to 4-byte characters

    async def go():
        async with connect(s.url) as ws:
            t = time.monotonic()
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 10)
            assert got == msg
            return time.monotonic() - t
    elapsed = run(go(), 15)
    assert elapsed < 6, "16 MiB echo took %.1f s" % elapsed
    assert s.alive()


def test_16_mib_binary_message_raw(start_server):
    s = start_server("--echo", "--max-message", "20000000")
    data = os.urandom(16 * 1024 * 1024)
    with RawWS.open(s, timeout=10) as ws:
        ws.send_frame(OP_BINARY, data)
        assert ws.recv_message() == (OP_BINARY, data)


def test_4_mib_binary_in_64_byte_fragments(start_server):
    s = start_server("--echo", "--max-message", "20000000")
    data = os.urandom(4 * 1024 * 1024)
    frags = [data[i:i + 64] for i in range(0, len(data), 64)]
    stream = [encode_frame(OP_BINARY, frags[0], fin=False)]
    stream += [encode_frame(OP_CONT, f, fin=False) for f in frags[1:-1]]
    stream.append(encode_frame(OP_CONT, frags[-1], fin=True))
    with RawWS.open(s, timeout=10) as ws:
        t = time.monotonic()
        ws.send(b"".join(stream))
        assert ws.recv_message() == (OP_BINARY, data)
        assert time.monotonic() - t < 6


@pytest.mark.parametrize("chop", [64, 997, 4096], ids=lambda c: "ab_9_5-chop-%d" % c)
def test_1_mib_text_in_tcp_chops(server, chop):
    # Autobahn 9.5/9.6: one frame, written in many small TCP writes.
    data = text_of(1 << 20)
    with RawWS.open(server, timeout=8) as ws:
        t = time.monotonic()
        ws.send(encode_frame(OP_TEXT, data), chunk=chop)
        assert ws.recv_message() == (OP_TEXT, data)
        assert time.monotonic() - t < 5


def test_1000_small_messages_back_to_back(server):
    async def go():
        async with connect(server.url) as ws:
            t = time.monotonic()
            for i in range(1000):
                await ws.send("small %d" % i)
            for i in range(1000):
                assert await asyncio.wait_for(ws.recv(), 3) == "small %d" % i
            return time.monotonic() - t
    assert run(go()) < 4


def test_1000_small_messages_lockstep(server):
    with RawWS.open(server) as ws:
        t = time.monotonic()
        for i in range(1000):
            payload = b"%d" % i
            ws.send_frame(OP_BINARY, payload)
            assert ws.recv_message() == (OP_BINARY, payload)
        # Each round trip on loopback must not wait for a timer or Nagle (~40 ms each).
        assert time.monotonic() - t < 4


# --- Autobahn 10: fragmentation does not change the message -------------------

def test_64_kib_in_1_kib_fragments_echoes_as_one_message(server):
    data = text_of(65536)
    with RawWS.open(server) as ws:
        for i in range(0, len(data), 1024):
            first, last = i == 0, i + 1024 >= len(data)
            ws.send_frame(OP_TEXT if first else OP_CONT, data[i:i + 1024], fin=last)
        assert ws.recv_message() == (OP_TEXT, data)


def test_fragmented_message_arrives_as_one_for_websockets(server):
    async def go():
        async with connect(server.url) as ws:
            await ws.send(iter(["alpha ", "beta ", "", "gamma"]))  # sent as 4 fragments
            assert await asyncio.wait_for(ws.recv(), 3) == "alpha beta gamma"
            await ws.send(iter([b"\x00", b"\x01\x02"]))
            assert await asyncio.wait_for(ws.recv(), 3) == b"\x00\x01\x02"
    run(go())


# --- --max-message ------------------------------------------------------------

@pytest.fixture
def small(start_server):
    s = start_server("--echo", "--max-message", "1000")
    yield s
    assert s.alive()


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_message_at_max_message_is_echoed(small, opcode):
    with RawWS.open(small) as ws:
        ws.send_frame(opcode, b"a" * 1000)
        assert ws.recv_message() == (opcode, b"a" * 1000)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_message_over_max_message_1009(small, opcode):
    with RawWS.open(small) as ws:
        ws.send_frame(opcode, b"a" * 1001)
        ws.expect_close(1009)


def test_fragmented_message_over_max_message_1009(small):
    with RawWS.open(small) as ws:
        ws.send_frame(OP_TEXT, b"a" * 600, fin=False)
        ws.send_frame(OP_CONT, b"b" * 401, fin=True)
        ws.expect_close(1009)


def test_many_small_fragments_over_max_message_1009(small):
    with RawWS.open(small) as ws:
        ws.send_frame(OP_BINARY, b"", fin=False)
        for _ in range(100):
            ws.send_frame(OP_CONT, b"0123456789", fin=False)
        ws.send_frame(OP_CONT, b"!", fin=True)
        ws.expect_close(1009)


def test_fragmented_message_at_max_message_is_echoed(small):
    with RawWS.open(small) as ws:
        ws.send_frame(OP_TEXT, b"a" * 600, fin=False)
        ws.send_frame(OP_CONT, b"b" * 400, fin=True)
        assert ws.recv_message() == (OP_TEXT, b"a" * 600 + b"b" * 400)


def test_huge_announced_length_1009_before_the_payload(small):
    # Only the header of a 1 GiB frame is sent: the server must refuse on the
    # header, not wait for (or buffer) a gigabyte.
    with RawWS.open(small) as ws:
        header = encode_frame(OP_BINARY, b"")[:1]
        ws.send(header + bytes([0x80 | 127]) + (1 << 30).to_bytes(8, "big") + b"\x01\x02\x03\x04")
        ws.expect_close(1009, timeout=2)


def test_max_message_is_per_message_not_per_connection(small):
    with RawWS.open(small) as ws:
        for _ in range(20):
            ws.send_frame(OP_BINARY, b"z" * 900)
            assert ws.recv_message() == (OP_BINARY, b"z" * 900)


def test_websockets_client_sees_1009(small):
    async def go():
        async with connect(small.url) as ws:
            await ws.send("x" * 5000)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
            assert ws.close_code == 1009
    run(go())


def test_default_max_message_is_1_mib(server):
    with RawWS.open(server) as ws:
        ws.send_frame(OP_BINARY, b"m" * 1048576)
        assert ws.recv_message() == (OP_BINARY, b"m" * 1048576)
    with RawWS.open(server) as ws:
        ws.send_frame(OP_BINARY, b"m" * 1048577)
        ws.expect_close(1009)


# --- clients stay independent ---------------------------------------------------

def test_two_clients_do_not_see_each_other_in_echo_mode(server):
    with RawWS.open(server) as a, RawWS.open(server) as b:
        a.send_text("from a")
        b.send_text("from b")
        assert a.recv_message() == (OP_TEXT, b"from a")
        assert b.recv_message() == (OP_TEXT, b"from b")
        a.recv_nothing(0.2)
        b.recv_nothing(0.2)


def test_ping_from_websockets_client_answered(server):
    async def go():
        async with connect(server.url) as ws:
            waiter = await ws.ping(b"are you there")
            await asyncio.wait_for(waiter, 3)
    run(go())


def test_whole_frames_and_wslay_frames_mixed_in_one_write(server):
    # The server takes whole single-frame messages on a fast path and hands
    # everything else to wslay. In one write: whole frames (fast path), a ping,
    # a fragmented message, a 64-bit-length frame (wslay), whole frames again,
    # then a whole text frame with invalid UTF-8 and a frame after it. Echoes
    # and the pong must come in order, then close 1007, and nothing after it.
    big = os.urandom(70000)
    parts = [
        encode_frame(OP_TEXT, b"one"),
        encode_frame(OP_BINARY, b"\x00\xff" * 100),
        encode_frame(wsraw.OP_PING, b"p"),
        encode_frame(OP_TEXT, b"frag-", fin=False),
        encode_frame(OP_CONT, b"ment"),
        encode_frame(OP_BINARY, big),
        encode_frame(OP_TEXT, "caf\u00e9".encode() * 50),
        encode_frame(OP_TEXT, b"ok \xc3\x28 bad"),
        encode_frame(OP_TEXT, b"never echoed"),
    ]
    with RawWS.open(server, timeout=5) as ws:
        ws.send(b"".join(parts))
        assert ws.recv_message() == (OP_TEXT, b"one")
        assert ws.recv_message() == (OP_BINARY, b"\x00\xff" * 100)
        f = ws.recv_frame()
        assert (f.opcode, f.payload) == (wsraw.OP_PONG, b"p"), f
        assert ws.recv_message() == (OP_TEXT, b"frag-ment")
        assert ws.recv_message() == (OP_BINARY, big)
        assert ws.recv_message() == (OP_TEXT, "caf\u00e9".encode() * 50)
        f = ws.recv_frame()
        assert f.opcode == wsraw.OP_CLOSE and f.close_code == 1007, f
