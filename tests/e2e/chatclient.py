"""Clients for the chat end-to-end tests (tests/e2e/test_chat_*.py).

Two kinds of client talk to a running chat-cli (see conftest.py):

- ChatClient wraps a python3-websockets connection.  It reads one server
  message at a time and every read is bounded (TIMEOUT seconds), so a missing
  line fails the test instead of hanging it.
- RawClient speaks just enough RFC 6455 over a plain asyncio stream to do what
  a well-behaved library will not: stop in the middle of a frame, or drop the
  TCP connection with a reset (SO_LINGER 0) instead of a close handshake.

A test body is a coroutine run by run(), which bounds the whole test; the
clients of one test live in a Clients pool, which closes them all on exit.
"""
import asyncio
import base64
import hashlib
import os
import re
import socket
import struct
import urllib.parse

import websockets

from memcheck import SCALE

# Time limits; SCALE > 1 when chat-cli runs under valgrind (memcheck.py).
TIMEOUT = 3.0 * SCALE       # seconds to wait for one message that must come
QUIET = 0.3 * min(SCALE, 10) ** 0.5  # seconds to wait when checking that nothing comes
TEST_TIMEOUT = 20.0  # seconds for a whole test body, times SCALE (a bound for hangs: ASan on 2 busy CPUs needs it)

GUEST_RE = re.compile(r"^guest-[1-9][0-9]*$")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def run(coro, *servers, timeout=TEST_TIMEOUT):
    """Runs one test body with an overall deadline, then stops each of
    servers with SIGTERM and checks it exits cleanly (see assert_clean_exit)."""
    async def _bounded():
        return await asyncio.wait_for(coro, timeout * SCALE)
    result = asyncio.run(_bounded())
    for s in servers:
        assert_clean_exit(s)
    return result


def assert_clean_exit(server):
    """SIGTERM stops the server with status 0 and nothing from a sanitizer
    (an ASan/UBSan build of chat-cli turns this into a leak and error check)."""
    assert server.alive(), "chat-cli died during the test: %s" % server.stderr_text()
    rc = server.terminate(timeout=5)  # times SCALE
    err = server.stderr_text()
    assert rc == 0, "chat-cli exited with %r on SIGTERM; stderr: %s" % (rc, err[-2000:])
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-4000:]


def url_for(server, name=None, room=None):
    query = {}
    if name is not None:
        query["name"] = name
    if room is not None:
        query["room"] = room
    return server.url + ("?" + urllib.parse.urlencode(query) if query else "")


def welcome(name, room="lobby"):
    return "* welcome, %s! you are in #%s; type /help for commands" % (name, room)


def parse_welcome(line):
    """Returns (name, room) from a welcome line, or fails the test."""
    m = re.match(r"^\* welcome, ([A-Za-z0-9_-]+)! you are in #([A-Za-z0-9_.-]+); type /help for commands$", line)
    assert m, "not a welcome line: %r" % (line,)
    return m.group(1), m.group(2)


class ChatClient:
    """One websockets connection; name/room are what the server told us."""

    def __init__(self, ws, name=None, room=None):
        self.ws = ws
        self.name = name
        self.room = room

    async def send(self, data):
        await self.ws.send(data)

    async def recv(self, timeout=TIMEOUT):
        """The next server message; it must be a text message."""
        try:
            msg = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("%s: no message within %.1f s" % (self.name, timeout)) from None
        assert isinstance(msg, str), "%s: expected a text message, got %r" % (self.name, msg)
        return msg

    async def recv_n(self, n, timeout=TIMEOUT):
        return [await self.recv(timeout) for _ in range(n)]

    async def expect(self, *lines):
        """The next len(lines) messages are exactly these, in this order."""
        got = []
        for _ in lines:
            got.append(await self.recv())
        assert got == list(lines), "%s received %r, expected %r" % (self.name, got, list(lines))

    async def expect_error(self, prefix="! "):
        """The next message is an error line starting with prefix."""
        line = await self.recv()
        assert line.startswith("! ") and line.startswith(prefix) and len(line.strip()) > 2, \
            "%s: expected an error line starting %r, got %r" % (self.name, prefix, line)
        return line

    async def expect_quiet(self, timeout=QUIET):
        """Nothing arrives for timeout seconds (pair this with a later sentinel)."""
        try:
            msg = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            return
        raise AssertionError("%s: expected nothing, received %r" % (self.name, msg))

    async def expect_closed(self, code, max_messages=10, timeout=TIMEOUT):
        """The server closes the connection with this close code; any messages
        before the close are returned (at most max_messages)."""
        before = []
        for _ in range(max_messages + 1):
            try:
                msg = await asyncio.wait_for(self.ws.recv(), timeout)
            except asyncio.TimeoutError:
                raise AssertionError("%s: not closed within %.1f s (got %r)" % (self.name, timeout, before)) from None
            except websockets.exceptions.ConnectionClosed as e:
                got = e.rcvd.code if e.rcvd is not None else None
                assert got == code, "%s: closed with %r (%s), expected close code %d" % (
                    self.name, got, e, code)
                return before
            before.append(msg)
        raise AssertionError("%s: still open after %r" % (self.name, before))

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 1.0)
        except Exception:
            self.ws.transport.abort()


async def open_ws(server, name=None, room=None, **kw):
    kw.setdefault("max_size", None)
    kw.setdefault("max_queue", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", TIMEOUT)
    kw.setdefault("close_timeout", 1)
    if server.url.startswith("wss:"):  # a TLS server: its test sets server.ssl
        kw.setdefault("ssl", getattr(server, "ssl", None))
    ws = await websockets.connect(url_for(server, name, room), **kw)
    return ChatClient(ws)


class RawClient:
    """A hand-made WebSocket client over an asyncio stream."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.name = None
        self.room = None

    @classmethod
    async def connect(cls, server, name=None, room=None):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(server.host, server.port), TIMEOUT)
        self = cls(reader, writer)
        key = base64.b64encode(os.urandom(16)).decode()
        q = url_for(server, name, room)[len(server.url) - 1:]  # "/?name=..."
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (q, server.host, server.port, key))
        writer.write(req.encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), "handshake refused: %r" % (lines[0],)
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        assert headers.get("sec-websocket-accept") == accept, "bad accept in %r" % (head,)
        return self

    @staticmethod
    def frame(opcode, payload, fin=True, mask=True):
        """Encodes one client frame (masked)."""
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        else:
            head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))

    async def write(self, data):
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), TIMEOUT)

    async def send_text(self, text):
        await self.write(self.frame(0x1, text.encode()))

    async def recv_frame(self, timeout=TIMEOUT):
        """(opcode, fin, payload) of the next server frame."""
        async def _read():
            b0, b1 = await self.reader.readexactly(2)
            assert not b1 & 0x80, "server frames must not be masked"
            n = b1 & 0x7F
            if n == 126:
                n, = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                n, = struct.unpack("!Q", await self.reader.readexactly(8))
            return b0 & 0x0F, bool(b0 & 0x80), await self.reader.readexactly(n)
        try:
            return await asyncio.wait_for(_read(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("raw client %s: no frame within %.1f s" % (self.name, timeout)) from None

    async def recv(self, timeout=TIMEOUT):
        """The next text message (unfragmented, as our server sends them);
        pings are skipped, not answered."""
        while True:
            op, fin, payload = await self.recv_frame(timeout)
            if op == 0x9:
                continue
            assert op == 0x1 and fin, "raw client %s: expected a text frame, got opcode %d" % (self.name, op)
            return payload.decode()

    def abort(self):
        """Drops the connection with a TCP reset: SO_LINGER 0, then close."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def close_tcp(self):
        """Closes the TCP connection (FIN) without a close frame."""
        self.writer.close()


class Clients:
    """The clients of one test: async with Clients(server) as c: ..."""

    def __init__(self, server):
        self.server = server
        self.all = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        for c in self.all:
            if isinstance(c, ChatClient):
                c.ws.transport.abort()
            else:
                c.writer.transport.abort()
        await asyncio.sleep(0)

    async def open(self, name=None, room=None, **kw):
        """A websockets client that has not read anything yet."""
        c = await open_ws(self.server, name, room, **kw)
        self.all.append(c)
        return c

    async def join(self, name=None, room=None, **kw):
        """A client whose welcome line was checked: it got exactly the name
        (or a guest name if None) and room asked for."""
        c = await self.open(name, room, **kw)
        line = await c.recv()
        if name is None:
            c.name, c.room = parse_welcome(line)
            assert GUEST_RE.match(c.name), "expected a guest name in %r" % (line,)
            assert c.room == (room or "lobby"), line
        else:
            assert line == welcome(name, room or "lobby"), "%s's welcome: %r" % (name, line)
            c.name, c.room = name, room or "lobby"
        return c

    async def raw(self, name, room=None):
        """A RawClient whose welcome line was checked."""
        c = await RawClient.connect(self.server, name, room)
        self.all.append(c)
        line = await c.recv()
        assert line == welcome(name, room or "lobby"), "%s's welcome: %r" % (name, line)
        c.name, c.room = name, room or "lobby"
        return c

    async def room(self, names, room=None):
        """Joins names one by one into the same room, checking that each
        member already there is told "* NAME joined #ROOM" about each later one."""
        members = []
        for n in names:
            c = await self.join(n, room)
            for m in members:
                await m.expect("* %s joined #%s" % (n, c.room))
            members.append(c)
        return members


async def say(sender, text, *receivers):
    """sender says text; sender and every receiver get exactly that line next."""
    await sender.send(text)
    line = "[%s] %s: %s" % (sender.room, sender.name, text)
    for r in (sender,) + receivers:
        await r.expect(line)
    return line
