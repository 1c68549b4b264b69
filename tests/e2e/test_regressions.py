"""Regression tests for bugs found in review (one test per bug)."""
import asyncio
import struct

import pytest
import websockets

import wsraw
from wsraw import OP_BINARY, OP_CLOSE, OP_TEXT, RawWS, encode_frame


def _nonminimal(opcode, payload, length_code):
    # A masked frame whose length uses a longer form than needed.
    key = b"\x01\x02\x03\x04"
    if length_code == 126:
        head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", len(payload))
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack(">Q", len(payload))
    return head + key + wsraw.apply_mask(payload, key)


@pytest.mark.parametrize("length_code,size", [(126, 5), (127, 5), (127, 65535)])
def test_non_minimal_length_is_1002_with_a_reason(start_server, length_code, size):
    # wslay alone answers these with an empty close frame (no status code).
    s = start_server("--echo")
    with RawWS.open(s, timeout=3) as ws:
        ws.send(_nonminimal(OP_TEXT, b"a" * size, length_code))
        f = ws.recv_frame()
        assert f.opcode == OP_CLOSE and f.close_code == 1002, f
        assert f.close_reason == b"frame length not in its minimal form", f


def test_quit_reason_is_cut_at_a_character_boundary(start_server):
    # A close reason has 123 bytes at most; cutting a 2-byte character in
    # half makes the close frame invalid UTF-8 (browsers fail on that).
    s = start_server()

    async def go():
        async with websockets.connect(s.url) as ws:
            await ws.recv()
            await ws.send("/quit " + "\u00e9" * 70)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 3)
            assert ws.close_code == 1000
            assert ws.close_reason == "\u00e9" * 61  # 122 bytes: whole characters
    asyncio.run(go())


def test_shutdown_does_not_flood_rooms_with_leave_notices(start_server):
    # Each of N clients used to be told about the N-1 others leaving.
    s = start_server()
    n = 40

    async def go():
        clients = [await websockets.connect(s.url) for _ in range(n)]
        # wait until the last join has reached everyone
        for c in clients:
            while True:
                line = await asyncio.wait_for(c.recv(), 5)
                if line == "* guest-%d joined #lobby" % n or (c is clients[-1] and line.startswith("* welcome")):
                    break
        s.proc.send_signal(15)
        for c in clients:
            got = []
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    got.append(await asyncio.wait_for(c.recv(), 5))
            assert got == [], got
            assert c.close_code == 1001
    asyncio.run(go())
    assert s.proc.wait(timeout=10) == 0
