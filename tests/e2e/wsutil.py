"""Small helpers shared by the end-to-end tests that drive embedding
programs (test_api.py: the API probe; test_examples.py: the examples):
bounded receives and runs, and raw HTTP upgrade requests on a plain socket.
Every wait is bounded (TIMEOUT for one thing, QUIET when nothing must come).
"""
import asyncio
import base64
import os
import re
import socket
import time

TIMEOUT = 3.0  # seconds for one thing that must happen
QUIET = 0.3    # seconds to wait when checking that nothing comes


def run_bounded(coro, timeout):
    """Runs one test body with an overall deadline."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def recv(ws, timeout=TIMEOUT):
    return await asyncio.wait_for(ws.recv(), timeout)


async def expect(ws, *lines):
    """The next messages are exactly lines, in order."""
    for want in lines:
        got = await recv(ws)
        assert got == want, "expected %r, got %r" % (want, got)


async def quiet(ws, timeout=QUIET):
    """Nothing arrives for a while."""
    try:
        got = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        return
    raise AssertionError("unexpected message %r" % (got,))


async def next_matching(ws, pattern, timeout=TIMEOUT):
    """Skips messages until one fullmatches pattern; returns it."""
    async def go():
        while True:
            line = await ws.recv()
            if isinstance(line, str) and re.fullmatch(pattern, line, re.S):
                return line
    return await asyncio.wait_for(go(), timeout)


def raw_upgrade(port, target, headers=""):
    """A plain socket that sent an upgrade request for target."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
               % (target, port, key, headers)).encode())
    return s


def read_to_eof(s):
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


async def echo_latencies(ws, busy, least=5, timeout=2):
    """Echo round trips on ws (an echo server), one every 20 ms while
    busy() is true and at least `least` of them: their times in seconds.
    For a bystander that a misbehaving client must not slow down."""
    out = []
    i = 0
    while busy() or i < least:
        t = time.monotonic()
        await ws.send("ping %d" % i)
        assert await asyncio.wait_for(ws.recv(), timeout) == "ping %d" % i
        out.append(time.monotonic() - t)
        i += 1
        await asyncio.sleep(0.02)
    return out
