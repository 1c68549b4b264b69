"""permessage-deflate (RFC 7692) against the real chat-cli.

What the Autobahn TestSuite's cases 12 and 13 check, with our own clients:
the answer to each offer (every parameter, declined offers, several offers),
compressed messages both ways for every parameter combination of case 13
(through python3-websockets, which inflates what we send with the window it
asked for), fragmented compressed messages with pings between fragments,
compressed and plain messages alternating, and the failures: invalid UTF-8
after inflation (1007), corrupt data (1007), RSV1 on a continuation or a
control frame or without negotiation (1002), a bomb (1009 past
--max-message, after inflation) and the ratio bound (1009). Then the chat:
one line to many deflate clients of different windows and plain clients at
once, the threshold, --no-deflate.
"""
import asyncio
import random
import zlib

import pytest
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from chatclient import Clients, run
from jsonclient import JsonClient, open_json_ws
from conftest import without_flood_control
from wsraw import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWS, encode_frame, new_key, upgrade_request

TAIL = b"\x00\x00\xff\xff"
BASE = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
# Realistic chat text: compressible, not a run of one byte.
PROSE = ("The quick brown fox jumps over the lazy dog while the committee "
         "discusses the minutes of the previous meeting at some length. ")


def compress(data, wbits=15):
    """One message compressed on its own, as a client without context takeover sends it."""
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def inflate(data, wbits=15):
    """Inflates with a window of wbits, strictly: output is taken 16 bytes at
    a time, so zlib checks every match distance against that window (with one
    big output buffer it would read back into the buffer instead)."""
    d = zlib.decompressobj(-wbits)
    out, buf = [], data + TAIL
    while True:
        chunk = d.decompress(buf, 16)
        out.append(chunk)
        buf = d.unconsumed_tail
        if not buf and not chunk:
            return b"".join(out)


def open_raw(server, offers=(), timeout=5):
    """A RawWS whose upgrade offered each of offers (one header each);
    returns (ws, the Sec-WebSocket-Extensions answer or None)."""
    ws = RawWS(server.host, server.port, timeout)
    key = new_key()
    req = upgrade_request(ws.hostport(), key=key,
                          extra=[("Sec-WebSocket-Extensions", o) for o in offers])
    try:
        headers = ws.handshake(request=req, key=key)
    except BaseException:
        ws.close()
        raise
    ext = headers.get("sec-websocket-extensions")
    assert ext is None or len(ext) == 1, ext
    return ws, (ext[0] if ext else None)


def recv_msg(ws, wbits=15):
    """The next data message, inflated if it has RSV1 -> (opcode, data, was_compressed)."""
    f = ws.recv_frame()
    assert not f.masked and f.opcode in (OP_TEXT, OP_BINARY), f
    assert f.rsv in (0, 4), f
    op, rsv1, parts = f.opcode, f.rsv == 4, [f.payload]
    while not f.fin:
        f = ws.recv_frame()
        assert f.opcode == OP_CONT and f.rsv == 0, f
        parts.append(f.payload)
    data = b"".join(parts)
    return op, (inflate(data, wbits) if rsv1 else data), rsv1


@pytest.fixture
def echo(start_server):
    s = start_server("--echo")
    yield s
    assert s.alive(), "chat-cli died during the test"


# --- negotiation ---------------------------------------------------------------

@pytest.mark.parametrize("offer,answer", [
    ("permessage-deflate", BASE),
    ("permessage-deflate; client_max_window_bits", BASE),
    ("permessage-deflate; client_max_window_bits=10", BASE + "; client_max_window_bits=10"),
    ("permessage-deflate; server_max_window_bits=10", BASE + "; server_max_window_bits=10"),
    ("permessage-deflate; server_max_window_bits=8", BASE + "; server_max_window_bits=8"),
    ("permessage-deflate; server_no_context_takeover", BASE),
    ("permessage-deflate; client_no_context_takeover", BASE),
    ("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=9; client_max_window_bits=12",
     BASE + "; server_max_window_bits=9; client_max_window_bits=12"),
    ('permessage-deflate; server_max_window_bits="11"', BASE + "; server_max_window_bits=11"),
    ("Permessage-Deflate ;  Server_Max_Window_Bits = 12", BASE + "; server_max_window_bits=12"),
    ("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits", BASE),
    ("permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=13",
     BASE + "; server_max_window_bits=13"),
    ("permessage-deflate; foo, permessage-deflate", BASE),
    ("permessage-deflate; server_max_window_bits=\"1,0\", permessage-deflate", BASE),
], ids=["plain", "cmwb", "cmwb-10", "smwb-10", "smwb-8", "snct", "cnct", "all", "quoted",
        "case-and-spaces", "other-ext-first", "bad-then-good", "unknown-then-good",
        "quoted-comma-then-good"])
def test_offer_answered(echo, offer, answer):
    ws, ext = open_raw(echo, [offer])
    with ws:
        assert ext == answer


@pytest.mark.parametrize("offer", [
    "permessage-deflate; foo",
    "permessage-deflate; foo=1",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=08",
    "permessage-deflate; server_max_window_bits=x",
    "permessage-deflate; client_max_window_bits=0",
    "permessage-deflate; server_no_context_takeover=1",
    'permessage-deflate; client_max_window_bits="1 0"',
    "permessage-deflate; server_max_window_bits=10; =",
    "x-webkit-deflate-frame",
    "deflate-stream",
], ids=["unknown", "unknown-value", "dup-snct", "dup-cmwb", "smwb-no-value", "smwb-7", "smwb-16",
        "smwb-leading-zero", "smwb-token", "cmwb-0", "snct-value", "quoted-space", "syntax",
        "other-extension", "deflate-stream"])
def test_declined_offer_gets_no_extension(echo, offer):
    ws, ext = open_raw(echo, [offer])
    with ws:
        assert ext is None
        # and the connection works without compression; RSV1 is an error
        ws.send_text(PROSE * 3)
        assert ws.recv_message() == (OP_TEXT, (PROSE * 3).encode())
        ws.send_frame(OP_TEXT, compress(b"hello"), rsv=4)
        ws.expect_close(1002)


def test_offers_in_two_headers(echo):
    ws, ext = open_raw(echo, ["permessage-deflate; bogus", "permessage-deflate; server_max_window_bits=12"])
    with ws:
        assert ext == BASE + "; server_max_window_bits=12"


def test_no_deflate_flag(start_server):
    s = start_server("--echo", "--no-deflate")
    ws, ext = open_raw(s, ["permessage-deflate; client_max_window_bits"])
    with ws:
        assert ext is None
        ws.send_text(PROSE * 3)
        f = ws.recv_frame()
        assert (f.rsv, f.payload) == (0, (PROSE * 3).encode())


# --- Autobahn 13: every parameter combination, through websockets -----------------

# (server_no_context_takeover, server_max_window_bits) as Autobahn 13.1-13.6 offer
# them, and client_max_window_bits with and without a value.
COMBOS = [(False, None, None), (True, None, None), (False, 8, None), (False, 15, None),
          (True, 8, None), (True, 15, None), (False, None, True), (False, 9, 9), (True, 12, 10)]


@pytest.mark.parametrize("snct,smwb,cmwb", COMBOS,
                         ids=["13.1", "13.2", "13.3", "13.4", "13.5", "13.6", "cmwb", "9-9", "12-10"])
def test_ab_13_echo_with_parameters(echo, snct, smwb, cmwb):
    sizes = [16, 64, 256, 1024, 4096, 32768, 131072]

    async def go():
        ext = ClientPerMessageDeflateFactory(server_no_context_takeover=snct,
                                             server_max_window_bits=smwb,
                                             client_max_window_bits=cmwb)
        async with websockets.connect(echo.url, extensions=[ext], compression=None,
                                      max_size=None) as ws:
            answer = ws.response_headers["Sec-WebSocket-Extensions"]
            assert answer.startswith(BASE)
            if smwb:
                assert "server_max_window_bits=%d" % smwb in answer
            for n in sizes:
                text = (PROSE * (n // len(PROSE) + 1))[:n]
                await ws.send(text)
                assert await asyncio.wait_for(ws.recv(), 5) == text
                data = bytes(range(256)) * (n // 256 + 1)
                await ws.send(data[:n])
                assert await asyncio.wait_for(ws.recv(), 5) == data[:n]
    run(go(), timeout=30)


@pytest.mark.parametrize("wbits", [8, 9, 12, 15])
def test_server_window_is_honoured(echo, wbits):
    """What we send inflates with exactly the window the client asked for
    (zlib refuses a distance past it)."""
    ws, ext = open_raw(echo, ["permessage-deflate; server_max_window_bits=%d" % wbits])
    with ws:
        assert "server_max_window_bits=%d" % wbits in ext
        # repeats at distances of 400, 700 and 5000 bytes: only a large window may use them
        rnd = random.Random(12)
        a, b, c = rnd.randbytes(400), rnd.randbytes(700), rnd.randbytes(5000)
        msg = a + a + b + b + c + c + (PROSE * 80).encode()
        ws.send_frame(OP_BINARY, compress(msg), rsv=4)
        op, data, rsv1 = recv_msg(ws, wbits=wbits)
        assert (op, data, rsv1) == (OP_BINARY, msg, True)


# --- incoming and outgoing frames on the wire ------------------------------------

def test_compressed_echo_on_the_wire(echo):
    ws, ext = open_raw(echo, ["permessage-deflate"])
    with ws:
        msg = (PROSE * 4).encode()
        ws.send_frame(OP_TEXT, compress(msg), rsv=4)
        f = ws.recv_frame()
        assert f.rsv == 4 and f.opcode == OP_TEXT and f.fin
        assert len(f.payload) < len(msg) // 2
        assert inflate(f.payload) == msg
        # an uncompressed message on the same connection comes back compressed too
        ws.send_text(msg)
        assert recv_msg(ws) == (OP_TEXT, msg, True)
        # an empty compressed message
        ws.send_frame(OP_TEXT, compress(b""), rsv=4)
        assert recv_msg(ws) == (OP_TEXT, b"", False)


def test_short_messages_go_uncompressed(echo):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        short = b"a" * 127  # under the default threshold of 128
        ws.send_frame(OP_TEXT, compress(short), rsv=4)
        f = ws.recv_frame()
        assert (f.rsv, f.payload) == (0, short)
        ws.send_text(b"a" * 128)
        assert recv_msg(ws) == (OP_TEXT, b"a" * 128, True)


def test_incompressible_goes_uncompressed(echo):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        import os
        data = os.urandom(2000)
        ws.send_frame(OP_BINARY, compress(data), rsv=4)
        f = ws.recv_frame()
        assert (f.rsv, f.opcode, f.payload) == (0, OP_BINARY, data)


def test_threshold_flag(start_server):
    s = start_server("--echo", "--deflate-threshold", "20")
    ws, _ = open_raw(s, ["permessage-deflate"])
    with ws:
        ws.send_text(b"abcabcabcabcabcabc")  # 18 bytes
        assert ws.recv_frame().rsv == 0
        ws.send_text(b"abcabcabcabcabcabcabcabc")  # 24 bytes
        assert recv_msg(ws) == (OP_TEXT, b"abcabcabcabcabcabcabcabc", True)


@pytest.mark.parametrize("chunk", [None, 1], ids=["whole", "byte-by-byte"])
def test_fragmented_compressed_message_with_pings(echo, chunk):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        msg = (PROSE * 10).encode()
        z = compress(msg)
        parts = [z[:5], z[5:40], z[40:41], z[41:]]
        ws.send_frame(OP_TEXT, parts[0], fin=False, rsv=4, chunk=chunk)
        ws.send_frame(OP_PING, b"p1", chunk=chunk)
        ws.send_frame(OP_CONT, parts[1], fin=False, chunk=chunk)
        ws.send_frame(OP_CONT, parts[2], fin=False, chunk=chunk)
        ws.send_frame(OP_PING, b"p2", chunk=chunk)
        ws.send_frame(OP_CONT, parts[3], fin=True, chunk=chunk)
        for p in (b"p1", b"p2"):
            f = ws.recv_frame()
            assert (f.opcode, f.payload, f.rsv) == (OP_PONG, p, 0)
        assert recv_msg(ws) == (OP_TEXT, msg, True)


def test_compressed_and_plain_messages_alternate(echo):
    ws, _ = open_raw(echo, ["permessage-deflate; client_max_window_bits"])
    with ws:
        for i in range(10):
            msg = ("%d " % i).encode() + (PROSE * 2).encode()
            if i % 2:
                ws.send_frame(OP_TEXT, compress(msg), rsv=4)
            else:
                ws.send_frame(OP_TEXT, msg[:70], fin=False)
                ws.send_frame(OP_CONT, msg[70:], fin=True)
            assert recv_msg(ws) == (OP_TEXT, msg, True)


# --- failures --------------------------------------------------------------------

def test_invalid_utf8_after_inflation_1007(echo):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        ws.send_frame(OP_TEXT, compress(b"valid start " * 20 + b"\xed\xa0\x80 bad"), rsv=4)
        f = ws.expect_close(1007)
        assert f.close_reason == b"invalid UTF-8"


def test_invalid_utf8_binary_is_fine(echo):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        data = b"\xed\xa0\x80\xff" * 100
        ws.send_frame(OP_BINARY, compress(data), rsv=4)
        assert recv_msg(ws) == (OP_BINARY, data, True)


def test_corrupt_compressed_data_1007(echo):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        ws.send_frame(OP_TEXT, b"\xff\xff\xff\xff garbage", rsv=4)
        f = ws.expect_close(1007)
        assert f.close_reason == b"invalid compressed data"


def test_two_compressed_messages_in_one_write(echo):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        a, b = (PROSE * 2).encode(), ("second " + PROSE * 3).encode()
        ws.send(encode_frame(OP_TEXT, compress(a), rsv=4) + encode_frame(OP_BINARY, compress(b), rsv=4))
        assert recv_msg(ws) == (OP_TEXT, a, True)
        assert recv_msg(ws) == (OP_BINARY, b, True)


@pytest.mark.parametrize("bad,code,reason", [
    (b"\xff\xff\xff\xff garbage", 1007, b"invalid compressed data"),
    (None, 1007, b"invalid UTF-8"),
    (b"bomb", 1009, b"message too big"),
], ids=["corrupt", "utf8", "bomb"])
def test_fragmented_compressed_failures(start_server, bad, code, reason):
    # the same failures when the message comes in fragments (wslay's path)
    s = start_server("--echo", "--max-message", "100000")
    ws, _ = open_raw(s, ["permessage-deflate"])
    with ws:
        if bad is None:
            bad = compress(b"fine " * 30 + b"\xc3\x28")
        elif bad == b"bomb":
            bad = compress(b"\0" * 1_000_000)
        ws.send_frame(OP_TEXT if code != 1009 else OP_BINARY, bad[:3], fin=False, rsv=4)
        ws.send_frame(OP_PING, b"between")
        ws.send_frame(OP_CONT, bad[3:], fin=True)
        f = ws.recv_frame()
        assert (f.opcode, f.payload) == (OP_PONG, b"between")
        assert ws.expect_close(code).close_reason == reason
    assert s.alive()


def test_message_after_a_failure_is_not_read(echo):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        ws.send(encode_frame(OP_TEXT, b"\x00\x01\x02 not deflate", rsv=4) +
                encode_frame(OP_TEXT, compress((PROSE * 2).encode()), rsv=4))
        ws.expect_close(1007)


def test_rsv1_on_continuation_1002(echo):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        z = compress((PROSE * 3).encode())
        ws.send_frame(OP_TEXT, z[:10], fin=False, rsv=4)
        ws.send_frame(OP_CONT, z[10:], fin=True, rsv=4)
        f = ws.expect_close(1002)
        assert f.close_reason == b"RSV1 on a continuation frame"


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG])
def test_rsv1_on_control_frame_1002(echo, opcode):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        ws.send_frame(opcode, b"x", rsv=4)
        f = ws.expect_close(1002)
        assert f.close_reason == b"RSV1 on a control frame"


def test_rsv1_without_negotiation_1002(echo):
    ws, ext = open_raw(echo, [])
    with ws:
        assert ext is None
        ws.send_frame(OP_TEXT, compress(b"hello hello hello"), rsv=4)
        f = ws.expect_close(1002)
        assert f.close_reason == b"RSV1 set without an extension"


@pytest.mark.parametrize("rsv", [2, 1, 6])
def test_rsv2_rsv3_still_1002_with_deflate(echo, rsv):
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        ws.send_frame(OP_TEXT, b"hello", rsv=rsv)
        ws.expect_close(1002)


def test_bomb_past_max_message_1009(start_server):
    from test_metrics import scrape
    s = start_server("--echo", "--max-message", "100000")
    ws, _ = open_raw(s, ["permessage-deflate"])
    with ws:
        # under the limit after inflation: fine
        ok = (PROSE * 1500)[:100000].encode()
        ws.send_frame(OP_TEXT, compress(ok), rsv=4)
        assert recv_msg(ws) == (OP_TEXT, ok, True)
        z = compress(b"\0" * 10_000_000)  # ~10 KB inflating to 10 MB
        assert len(z) < 100000
        before = scrape(s)
        ws.send_frame(OP_BINARY, z, rsv=4)
        f = ws.expect_close(1009)
        assert f.close_reason == b"message too big"
    assert s.alive()
    d = scrape(s) - before
    assert d("wschat_inflate_refused_total") == 1 and d("wschat_inflated_messages_total") == 0


def test_ratio_bound_1009(start_server):
    s = start_server("--echo", "--max-message", "8000000")
    ws, _ = open_raw(s, ["permessage-deflate"], timeout=10)
    with ws:
        # 2 MB of realistic text (about 500:1 at worst) is content: it passes
        text = ("aé€😀" * 200_000).encode()
        ws.send_frame(OP_TEXT, compress(text), rsv=4)
        assert recv_msg(ws) == (OP_TEXT, text, True)
        # 2 MB of zeros from 2 KB (1000:1 and more): a bomb, under max-message
        z = compress(b"\0" * 2_000_000)
        assert 2_000_000 / len(z) > 1000
        ws.send_frame(OP_BINARY, z, rsv=4)
        f = ws.expect_close(1009)
        assert f.close_reason == b"compression ratio too high"
    assert s.alive()


def test_compressed_size_over_max_message_1009(start_server):
    s = start_server("--echo", "--max-message", "1000")
    ws, _ = open_raw(s, ["permessage-deflate"])
    with ws:
        import os
        ws.send_frame(OP_BINARY, compress(os.urandom(2000)), rsv=4)
        ws.expect_close(1009)


# --- the chat: one line, many clients with different parameters ---------------------

def test_chat_broadcast_to_deflate_and_plain_clients(start_server):
    s = without_flood_control(start_server)()
    line = "hello everyone, " + PROSE * 3

    async def go():
        async with Clients(s) as c:
            kinds = ([dict(compression=None)] * 4 +
                     [dict()] * 4 +  # websockets' default offer
                     [dict(compression=None, extensions=[ClientPerMessageDeflateFactory(
                         server_max_window_bits=b, client_max_window_bits=True)])
                      for b in (8, 9, 10, 12)] * 2)
            members = []
            for i, kw in enumerate(kinds):
                m = await c.join("u%d" % i, **kw)
                members.append(m)
            for m in members:  # the joins that followed each one
                for _ in range(len(members) - 1 - members.index(m)):
                    await m.recv()
            # JSON clients, with and without deflate, see the same events
            jz = await open_json_ws(s.url + "?name=jz")
            jp = await open_json_ws(s.url + "?name=jp", compression=None)
            for j in (jz, jp):
                c.all.append(JsonClient(j))
            assert "permessage-deflate" in jz.response_headers["Sec-WebSocket-Extensions"]
            assert "Sec-WebSocket-Extensions" not in jp.response_headers
            for m in members:  # "* jz joined", "* jp joined"
                await m.recv()
                await m.recv()
            await members[0].send(line)
            short = "hi"
            await members[5].send(short)
            for m in members:
                assert await m.recv() == "[lobby] u0: " + line
                assert await m.recv() == "[lobby] u5: " + short
            for j in c.all[-2:]:
                texts = []
                for _ in range(10):
                    o = await j.recv_obj()
                    if o["type"] == "message":
                        texts.append((o["from"], o["text"]))
                        if len(texts) == 2:
                            break
                assert texts == [("u0", line), ("u5", short)]
    run(go(), s, timeout=40)


def test_chat_frames_compressed_once_per_window(start_server):
    """One line to clients of two windows and plain ones: compressed twice
    (/metrics counts it), not once per client; clients with the same window
    get byte-identical frames, the other window a frame of its own that
    inflates with it, plain clients the plain line."""
    from test_metrics import scrape
    s = without_flood_control(start_server)()
    offers = (["permessage-deflate"] * 4 + ["permessage-deflate; server_max_window_bits=9"] * 3 +
              [None, None])
    clients = []
    try:
        for i, o in enumerate(offers):
            ws = RawWS(s.host, s.port, 5)
            key = new_key()
            req = upgrade_request(ws.hostport(), path="/?name=r%d" % i, key=key,
                                  extra=[("Sec-WebSocket-Extensions", o)] if o else [])
            ws.handshake(request=req, key=key)
            clients.append(ws)
            recv_msg(ws)  # welcome
            for earlier in clients[:-1]:
                recv_msg(earlier)  # "* rN joined"
        before = scrape(s)
        # words repeated at a distance of about 900 bytes: a 15-bit window
        # finds the repeat, a 9-bit one cannot
        rnd = random.Random(5)
        words = " ".join("".join(rnd.choice("abcdefghij") for _ in range(rnd.randint(2, 9)))
                         for _ in range(150))
        line = (words + " / " + words).encode()
        clients[0].send_text(line)
        got = [c.recv_frame() for c in clients]
        expect = b"[lobby] r0: " + line
        assert [f.rsv for f in got] == [4] * 7 + [0, 0], got
        assert len({f.payload for f in got[:4]}) == 1 and len({f.payload for f in got[4:7]}) == 1
        assert len(got[0].payload) < len(got[4].payload)
        assert inflate(got[0].payload) == expect
        assert inflate(got[4].payload, wbits=9) == expect
        assert got[7].payload == got[8].payload == expect
        d = scrape(s) - before
        assert d("wschat_deflate_frames_total") == 2
        assert d("wschat_deflate_bytes_total", form="plain") == 2 * len(expect)
        assert d("wschat_deflate_bytes_total", form="compressed") == len(got[0].payload) + len(got[4].payload)
        assert d("wschat_deliveries_total") == 9
    finally:
        for c in clients:
            c.close()


def test_config_file_and_sighup(start_server, tmp_path):
    """no-deflate and deflate-threshold in the INI file; SIGHUP applies a
    change to the connections that come next."""
    import signal
    import time
    conf = tmp_path / "chat.ini"
    conf.write_text("echo = true\nno-deflate = true\n")
    s = start_server("--config", str(conf))
    ws, ext = open_raw(s, ["permessage-deflate"])
    ws.close()
    assert ext is None
    conf.write_text("echo = true\ndeflate-threshold = 10\n")
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "setting=deflate-threshold" not in s.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    err = s.stderr_text()
    assert "info reload setting=no-deflate old=0 new=1" in err, err
    ws, ext = open_raw(s, ["permessage-deflate"])
    with ws:
        assert ext == BASE
        ws.send_text(b"abcabcabcabcabc")  # 15 bytes: over the new threshold
        assert recv_msg(ws) == (OP_TEXT, b"abcabcabcabcabc", True)


# --- edge cases of the compressed payload (Autobahn 12/13 and browsers) ----------

def _finish(data):
    """Compressed with Z_FINISH: the last block has BFINAL=1 (RFC 7692 7.2.3.4)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH)


@pytest.mark.parametrize("payload,expect", [
    (b"", b""), (b"\x00", b""), (b"\x00" + TAIL, b""),
    (compress(PROSE.encode()) + TAIL, PROSE.encode()),
    (_finish(PROSE.encode()), PROSE.encode()), (_finish(b""), b""),
], ids=["empty", "browser-empty", "empty-tail-left-in", "tail-left-in", "bfinal", "bfinal-empty"])
def test_compressed_payload_forms(echo, payload, expect):
    # whole (the fast path), then in fragments byte by byte with a ping (wslay)
    ws, _ = open_raw(echo, ["permessage-deflate"])
    with ws:
        ws.send_frame(OP_TEXT, payload, rsv=4)
        assert recv_msg(ws)[:2] == (OP_TEXT, expect)
        ws.send_frame(OP_TEXT, payload[:1], fin=False, rsv=4, chunk=1)
        ws.send_frame(OP_PING, b"x", chunk=1)
        ws.send_frame(OP_CONT, payload[1:], chunk=1)
        f = ws.recv_frame()
        assert (f.opcode, f.payload) == (OP_PONG, b"x")
        assert recv_msg(ws)[:2] == (OP_TEXT, expect)


def test_corrupt_data_leaves_the_shared_inflater_fine_for_the_next(echo):
    msg = (PROSE * 20).encode()
    z = compress(msg)
    for bad in (z[:len(z) // 2] + b"\xff\x00\x13" * 5, b"\x00" + z):
        ws, _ = open_raw(echo, ["permessage-deflate"])
        with ws:
            ws.send_frame(OP_TEXT, bad, rsv=4)
            assert ws.expect_close(1007).close_reason == b"invalid compressed data"
        ws, _ = open_raw(echo, ["permessage-deflate"])
        with ws:
            ws.send_frame(OP_TEXT, z, rsv=4)
            assert recv_msg(ws) == (OP_TEXT, msg, True)


def test_compressed_frame_in_the_upgrade_write(echo):
    ws = RawWS(echo.host, echo.port, 5)
    key = new_key()
    msg = (PROSE * 5).encode()
    req = upgrade_request(ws.hostport(), key=key, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    with ws:
        ws.handshake(request=req + encode_frame(OP_TEXT, compress(msg), rsv=4), key=key)
        assert recv_msg(ws) == (OP_TEXT, msg, True)
