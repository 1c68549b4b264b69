"""The public API as an embedding program sees it: tests/api_probe.c.

api_probe wires every hook of libwschat, logs each hook call as one line on
stdout, exposes the API through its own chat commands (/shout, /all, /to,
/move, /kick, /list, /threads, ...) and checks, in C, every result the API
states ("check FAIL ..." lines). These tests drive it with real clients and
assert both sides: what the clients receive and which hooks ran, in order.

Every test ends with Probe.finish(): SIGTERM, exit status 0 (wschat_server_free()
and uv_loop_close() both returned 0), no "check FAIL" line, nothing from a
sanitizer, and for every connection exactly one connect, then exactly one
disconnect, with join/leave in between and balanced.

The binary comes from $WSCHAT_API_PROBE (meson sets it).
"""
import asyncio
import base64
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest
import websockets

PROBE = os.environ.get("WSCHAT_API_PROBE",
                       os.path.join(os.path.dirname(__file__), "..", "..", "build", "tests", "api_probe"))
START_RE = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")
TIMEOUT = 3.0      # seconds for one thing that must happen
QUIET = 0.3        # seconds to wait when checking that nothing comes
TEST_TIMEOUT = 20  # seconds for a whole test body

WELCOME = "* welcome, %s! you are in #%s; type /help for commands"
HOOK_RE = re.compile(r"(connect|join|leave|disconnect|message) (\d+) (.*)")


class Probe:
    """A running api_probe; its stdout is collected line by line."""

    def __init__(self):
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([PROBE, "0"], stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, bufsize=1)
        self.lines = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        first = self.wait_line(START_RE.pattern, timeout=10)
        self.port = int(START_RE.fullmatch(first).group(1))
        self.url = "ws://127.0.0.1:%d" % self.port

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append(None)  # end of output
            self._cond.notify_all()

    def matching(self, pattern):
        with self._cond:
            return [l for l in self.lines if l is not None and re.fullmatch(pattern, l)]

    def wait_line(self, pattern, timeout=TIMEOUT, count=1):
        """Blocks until count lines fullmatch pattern; returns the count-th."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [l for l in self.lines if l is not None and re.fullmatch(pattern, l)]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1] is None):
                    raise AssertionError("no line %r (x%d) from api_probe; got:\n%s\nstderr: %s"
                                         % (pattern, count, "\n".join(l for l in self.lines if l),
                                            self.stderr_text()[-2000:]))
                self._cond.wait(left)

    async def line(self, pattern, timeout=TIMEOUT, count=1):
        """wait_line for coroutines: the event loop keeps running meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(pattern)
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return self.wait_line(pattern, timeout=0.5, count=count)  # raises with the log
            await asyncio.sleep(0.01)

    def hooks(self, cid):
        """The connect/join/leave/disconnect lines of client cid, in order."""
        return self.matching(r"(connect|join|leave|disconnect) %d .*" % cid)

    def stderr_text(self):
        self._stderr.seek(0)
        return self._stderr.read()

    def finish(self, shutdown_cb=True, signalled=False):
        """Stops the probe (SIGTERM, unless signalled says the test sent it)
        and checks everything that must hold at the end. shutdown_cb: whether
        our shutdown callback must have run (not after a posted shutdown).
        A second SIGTERM would kill it: its signal handle is closed by then."""
        if not signalled and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            rc = None
        self._reader.join(timeout=5)
        lines = [l for l in self.lines if l is not None]
        err = self.stderr_text()
        log = "\n".join(lines)
        assert [l for l in lines if l.startswith("check FAIL")] == [], log
        assert "Sanitizer" not in err and "runtime error:" not in err, err[-4000:]
        assert rc == 0, "api_probe exited with %r; log:\n%s\nstderr: %s" % (rc, log, err[-2000:])
        assert lines[-1] == "exit free=0 loop=0", log
        assert lines.count("shutdown") == (1 if shutdown_cb else 0), log
        check_hook_order(lines)
        return lines

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        self.proc.stdout.close()
        self._stderr.close()


def check_hook_order(lines):
    """Per connection: one connect first, one disconnect last, and between
    them joins and leaves that alternate (leave names the room joined)."""
    state = {}  # id -> "open" | "gone"
    room = {}
    for l in lines:
        m = HOOK_RE.fullmatch(l)
        if not m:
            continue
        kind, cid, rest = m.group(1), int(m.group(2)), m.group(3)
        if kind == "connect":
            assert cid not in state, "second connect of %d:\n%s" % (cid, "\n".join(lines))
            state[cid] = "open"
            room[cid] = None
            continue
        assert state.get(cid) == "open", "%r outside connect..disconnect:\n%s" % (l, "\n".join(lines))
        if kind == "join":
            assert room[cid] is None, "join while in #%s: %r" % (room[cid], l)
            room[cid] = rest.split(" ")[1]
        elif kind == "leave":
            assert room[cid] == rest.split(" ")[1], "leave of a room not joined: %r" % l
            room[cid] = None
        elif kind == "disconnect":
            assert room[cid] is None, "disconnect while in #%s: %r" % (room[cid], l)
            state[cid] = "gone"
    assert [c for c, s in state.items() if s != "gone"] == [], "connect without disconnect:\n" + "\n".join(lines)


@pytest.fixture
def probe():
    p = Probe()
    yield p
    p.kill()


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, TEST_TIMEOUT)
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


async def closed_with(ws, code, reason):
    """The server closes ws with code and reason, sending nothing before."""
    with pytest.raises(websockets.ConnectionClosed):
        got = await recv(ws)
        raise AssertionError("message %r before the close" % (got,))
    assert (ws.close_code, ws.close_reason) == (code, reason)


async def join(probe, name, room=None, path="/", headers=None, others=()):
    """Connects a named client; checks its welcome, its join hook and the
    notice to others (clients already in the room). Returns (ws, id)."""
    query = "name=" + name + ("&room=" + room if room else "")
    ws = await websockets.connect(probe.url + path + "?" + query, extra_headers=headers or {},
                                  open_timeout=TIMEOUT)
    await expect(ws, WELCOME % (name, room or "lobby"))
    line = await probe.line(r"connect \d+ %s %s" % (re.escape(path), re.escape(query)))
    cid = int(line.split()[1])
    await probe.line(r"join %d %s %s" % (cid, name, room or "lobby"))
    for o in others:
        await expect(o, "* %s joined #%s" % (name, room or "lobby"))
    return ws, cid


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


# ---- start and stop ----

def test_start_checks_and_clean_exit(probe):
    """The checks made before listening pass, and an idle probe exits
    cleanly: the shutdown callback runs once, free and loop_close return 0."""
    lines = probe.finish()
    assert lines == ["listening on ws://127.0.0.1:%d/" % probe.port, "shutdown", "exit free=0 loop=0"]


# ---- connect and disconnect, for every kind of end ----

def test_close_by_the_client(probe):
    async def go():
        a, aid = await join(probe, "alice")
        await a.close()
        await probe.line(r"disconnect %d alice 1000" % aid)
        assert probe.hooks(aid) == [
            "connect %d / name=alice" % aid,
            "join %d alice lobby" % aid,
            "leave %d alice lobby -" % aid,
            "disconnect %d alice 1000" % aid,
        ]
    run(go())
    probe.finish()


def test_tcp_reset(probe):
    async def go():
        b, bid = await join(probe, "bob")
        s = raw_upgrade(probe.port, "/?name=eve")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 101 "), head
        line = await probe.line(r"join \d+ eve lobby")
        eid = int(line.split()[1])
        await expect(b, "* eve joined #lobby")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST, no close frame
        await expect(b, "* eve left #lobby")
        await probe.line(r"disconnect %d eve 1006" % eid)
        assert probe.hooks(eid) == [
            "connect %d / name=eve" % eid,
            "join %d eve lobby" % eid,
            "leave %d eve lobby -" % eid,
            "disconnect %d eve 1006" % eid,
        ]
        await b.close()
    run(go())
    probe.finish()


def test_kick(probe):
    """find_client (case-insensitive) + client_close(4002, "kicked") from
    another client's on_message."""
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        await a.send("/kick BOB")
        await closed_with(b, 4002, "kicked")
        await expect(a, "* bob left #lobby")
        await probe.line(r"disconnect %d bob 4002" % bid)
        assert probe.hooks(bid) == [
            "connect %d / name=bob" % bid,
            "join %d bob lobby" % bid,
            "leave %d bob lobby -" % bid,
            "disconnect %d bob 4002" % bid,
        ]
        await a.send("/kick bob")  # gone: no longer found
        await expect(a, "! no such client or room")
        await a.close()
    run(go())
    probe.finish()


def test_reject_http(probe):
    """wschat_client_reject(403, "go away") in on_connect: an HTTP answer,
    then exactly one disconnect (no join: the client never entered the chat)."""
    s = raw_upgrade(probe.port, "/reject-http")
    try:
        data = read_to_eof(s)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 403 Forbidden", data
    # The library ends every plain-text body with a newline (as curl users expect).
    assert body == b"go away\n", data
    line = probe.wait_line(r"connect \d+ /reject-http -")
    cid = int(line.split()[1])
    probe.wait_line(r"disconnect %d .*" % cid)
    assert probe.hooks(cid) == ["connect %d /reject-http -" % cid, "disconnect %d - 403" % cid]
    probe.finish()


def test_reject_ws(probe):
    """wschat_client_reject(4001, "not today"): the handshake succeeds, then
    the close comes first (no welcome), then exactly one disconnect."""
    async def go():
        ws = await websockets.connect(probe.url + "/reject-ws", open_timeout=TIMEOUT)
        await closed_with(ws, 4001, "not today")
        line = await probe.line(r"connect \d+ /reject-ws -")
        cid = int(line.split()[1])
        await probe.line(r"disconnect %d .*" % cid)
        assert probe.hooks(cid) == ["connect %d /reject-ws -" % cid, "disconnect %d - 4001" % cid]
    run(go())
    probe.finish()


def test_shutdown_closes_everyone_with_1001(probe):
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", room="den")
        probe.proc.send_signal(signal.SIGTERM)
        for ws in (a, b):
            await closed_with(ws, 1001, "server shutting down")
        return aid, bid
    aid, bid = run(go())
    lines = probe.finish(signalled=True)
    assert probe.hooks(aid)[2:] == ["leave %d alice lobby -" % aid, "disconnect %d alice 1001" % aid]
    assert probe.hooks(bid)[2:] == ["leave %d bob den -" % bid, "disconnect %d bob 1001" % bid]
    # The shutdown callback runs after every client is gone.
    assert lines.index("shutdown") > max(lines.index("disconnect %d alice 1001" % aid),
                                         lines.index("disconnect %d bob 1001" % bid))


def test_client_closes_itself_from_on_message(probe):
    """/bye: wschat_client_close(4003) of the sender; the C side checks that
    a second close, send, send_binary, join and rename then give ECLOSED."""
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/bye")
        await closed_with(a, 4003, "bye")
        await probe.line(r"disconnect %d alice 4003" % aid)
        assert probe.hooks(aid)[2:] == ["leave %d alice lobby -" % aid, "disconnect %d alice 4003" % aid]
    run(go())
    probe.finish()


def test_post_shutdown_from_a_thread(probe):
    """/stop: a pthread calls wschat_server_post_shutdown(); clients get 1001
    and the listener closes, while the program (its own handles) lives on
    until SIGTERM."""
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/stop")
        await closed_with(a, 1001, "server shutting down")
        await probe.line(r"disconnect %d alice 1001" % aid)
        deadline = time.monotonic() + TIMEOUT
        while True:  # the listener closes soon after
            try:
                socket.create_connection(("127.0.0.1", probe.port), timeout=1).close()
            except ConnectionRefusedError:
                break
            assert time.monotonic() < deadline, "still accepting after post_shutdown"
            await asyncio.sleep(0.05)
        await asyncio.sleep(QUIET)
        assert probe.proc.poll() is None
    run(go())
    lines = probe.finish(shutdown_cb=False)
    assert "sigterm: already shutting down" in lines


def test_close_from_on_connect_is_a_websocket_reject(probe):
    """wschat_client_close() inside on_connect acts as wschat_client_reject()."""
    async def go():
        ws = await websockets.connect(probe.url + "/close-ws", open_timeout=TIMEOUT)
        await closed_with(ws, 4005, "closed early")
        line = await probe.line(r"connect \d+ /close-ws -")
        cid = int(line.split()[1])
        await probe.line(r"disconnect %d .*" % cid)
        assert probe.hooks(cid) == ["connect %d /close-ws -" % cid, "disconnect %d - 4005" % cid]
    run(go())
    probe.finish()


def test_shutdown_from_on_message(probe):
    """/halt: wschat_server_shutdown() inside a hook; the sender and the
    others get 1001, the callback runs, the program exits by itself."""
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", room="den")
        await a.send("/halt")
        for ws in (a, b):
            await closed_with(ws, 1001, "server shutting down")
        return aid, bid
    aid, bid = run(go())
    assert probe.proc.wait(timeout=10) == 0  # no SIGTERM needed
    probe.finish()
    assert probe.hooks(aid)[2:] == ["leave %d alice lobby -" % aid, "disconnect %d alice 1001" % aid]
    assert probe.hooks(bid)[2:] == ["leave %d bob den -" % bid, "disconnect %d bob 1001" % bid]


def test_shutdown_from_on_connect(probe):
    """Path /halt: on_connect starts the shutdown; that client is answered
    503, the open one gets 1001."""
    async def go():
        a, aid = await join(probe, "alice")
        s = raw_upgrade(probe.port, "/halt")
        try:
            data = read_to_eof(s)
        finally:
            s.close()
        assert data.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable", data
        await closed_with(a, 1001, "server shutting down")
        return aid
    aid = run(go())
    assert probe.proc.wait(timeout=10) == 0
    lines = probe.finish()
    hid = int(probe.matching(r"connect \d+ /halt -")[0].split()[1])
    assert probe.hooks(hid) == ["connect %d /halt -" % hid, "disconnect %d - 503" % hid]
    assert probe.hooks(aid)[2:] == ["leave %d alice lobby -" % aid, "disconnect %d alice 1001" % aid]
    assert lines.index("shutdown") > lines.index("disconnect %d - 503" % hid)


# ---- join and leave hooks ----

def test_join_and_leave_hooks_on_chat_commands(probe):
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/join den")
        await expect(a, "* alice joined #den")
        await a.send("/join den")
        await expect(a, "! you are already in #den")
        await a.send("/leave")
        await expect(a, "* alice joined #lobby")
        await a.send("/quit see you")
        with pytest.raises(websockets.ConnectionClosed):
            await recv(a)
        assert a.close_code == 1000
        await probe.line(r"disconnect %d .*" % aid)
        assert probe.hooks(aid) == [
            "connect %d / name=alice" % aid,
            "join %d alice lobby" % aid,
            "leave %d alice lobby -" % aid,
            "join %d alice den" % aid,
            "leave %d alice den -" % aid,
            "join %d alice lobby" % aid,
            "leave %d alice lobby see you" % aid,
            "disconnect %d alice 1000" % aid,
        ]
    run(go())
    probe.finish()


def test_on_join_may_move_the_client_on(probe):
    """Room "trap": the probe's on_join moves the client on to "jail";
    both joins and the leave between them fire, in order."""
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        await a.send("/join trap")
        await expect(a, "* alice joined #trap", "* alice joined #jail")
        await expect(b, "* alice left #lobby")
        await a.send("/list")  # trap is empty again: gone
        await expect(a, "* list jail=1:alice lobby=1:bob rooms=2 everyone=2")
        await probe.line(r"message %d alice text /list" % aid)
        assert probe.hooks(aid)[1:] == [
            "join %d alice lobby" % aid,
            "leave %d alice lobby -" % aid,
            "join %d alice trap" % aid,
            "leave %d alice trap -" % aid,
            "join %d alice jail" % aid,
        ]
        await quiet(b)
        await a.close()
        await b.close()
    run(go())
    probe.finish()


def test_on_join_may_close_the_client(probe):
    """Room "doom": the probe's on_join closes the client (4004)."""
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/join doom")
        await expect(a, "* alice joined #doom")
        await closed_with(a, 4004, "doomed")
        await probe.line(r"disconnect %d .*" % aid)
        assert probe.hooks(aid)[1:] == [
            "join %d alice lobby" % aid,
            "leave %d alice lobby -" % aid,
            "join %d alice doom" % aid,
            "leave %d alice doom -" % aid,
            "disconnect %d alice 4004" % aid,
        ]
        # Straight into doom from the URL: welcome, then the close.
        ws = await websockets.connect(probe.url + "/?name=dan&room=doom", open_timeout=TIMEOUT)
        await expect(ws, WELCOME % ("dan", "doom"))
        await closed_with(ws, 4004, "doomed")
        line = await probe.line(r"disconnect \d+ dan .*")
        did = int(line.split()[1])
        assert probe.hooks(did) == [
            "connect %d / name=dan&room=doom" % did,
            "join %d dan doom" % did,
            "leave %d dan doom -" % did,
            "disconnect %d dan 4004" % did,
        ]
    run(go())
    probe.finish()


def test_move_and_home(probe):
    """wschat_client_join() and _leave(): notices to both rooms, the hooks,
    and ESAMEROOM / EROOM reported without any hook."""
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        await a.send("/move den")
        await expect(a, "* alice joined #den")
        await expect(b, "* alice left #lobby")
        await a.send("/move DEN")  # room names compare case-insensitively
        await expect(a, "! already in that room")
        await a.send("/move no room")
        await expect(a, "! invalid room name (1-64 of A-Z a-z 0-9 - _ .)")
        await a.send("/home")
        await expect(a, "* alice joined #lobby")
        await expect(b, "* alice joined #lobby")
        await a.send("/home")
        await expect(a, "! already in that room")
        await a.send("/whoami")
        assert (await recv(a)).startswith("* whoami id=%d name=alice room=lobby " % aid)
        await probe.line(r"message %d alice text /whoami" % aid)  # the log is read up to here
        assert probe.hooks(aid)[1:] == [
            "join %d alice lobby" % aid,
            "leave %d alice lobby -" % aid,
            "join %d alice den" % aid,
            "leave %d alice den -" % aid,
            "join %d alice lobby" % aid,
        ]
        await quiet(b)
        await a.close()
        await b.close()
    run(go())
    probe.finish()


# ---- the message hook: replace, drop, pass ----

def test_replace(probe):
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        await a.send("/shout hello there")
        for ws in (a, b):
            await expect(ws, "[lobby] alice: HELLO THERE")
        await a.send("/shout /nick x")  # the chat sees the replaced text: a command
        for ws in (a, b):
            await expect(ws, "* alice is now known as X")
        await probe.line(r"message %d alice text /shout /nick x" % aid)
        assert probe.matching(r"message %d alice text .*" % aid) == [
            "message %d alice text /shout hello there" % aid,
            "message %d alice text /shout /nick x" % aid,
        ]
        await a.close()
        await b.close()
    run(go())
    probe.finish()


def test_drop_and_pass(probe):
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        await a.send("/drop")
        await a.send("plain line")
        for ws in (a, b):  # the dropped message reached nobody
            await expect(ws, "[lobby] alice: plain line")
        await a.send("/help me")  # not the probe's: the chat's own
        assert (await recv(a)).startswith("* commands:\n")
        await probe.line(r"message %d alice text /help me" % aid)
        assert probe.matching(r"message %d .*" % aid) == [
            "message %d alice text /drop" % aid,
            "message %d alice text plain line" % aid,
            "message %d alice text /help me" % aid,
        ]
        await quiet(b)
        await a.close()
        await b.close()
    run(go())
    probe.finish()


# ---- broadcast ----

def test_broadcast_to_everyone_skips_the_sender(probe):
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", room="den")
        c, cid = await join(probe, "carol", others=[a])
        await a.send("/all hi everyone")
        await expect(b, "hi everyone")
        await expect(c, "hi everyone")
        await a.send("/whoami")  # the next thing alice gets: not her broadcast
        assert (await recv(a)).startswith("* whoami id=%d " % aid)
        await a.send("/all \u00e9t\u00e9 \u2713")
        await expect(b, "\u00e9t\u00e9 \u2713")
        await expect(c, "\u00e9t\u00e9 \u2713")
        for ws in (a, b, c):
            await quiet(ws, 0.1)
        for ws in (a, b, c):
            await ws.close()
    run(go())
    probe.finish()


def test_broadcast_to_a_room_and_enotfound(probe):
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", room="den")
        await a.send("/to den psst")
        await expect(b, "psst")
        await a.send("/to lobby to myself too")  # skip is NULL: the sender gets it
        await expect(a, "to myself too")
        await a.send("/to nowhere hello")
        await expect(a, "! no such client or room")
        await quiet(b)
        await a.close()
        await b.close()
    run(go())
    probe.finish()


# ---- rename ----

def test_rename(probe):
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        c, cid = await join(probe, "carol", room="den")
        await a.send("/rename alicia")
        for ws in (a, b):
            await expect(ws, "* alice is now known as alicia")
        await a.send("/rename BOB")  # names compare case-insensitively
        await expect(a, "! name already taken")
        await a.send("/rename not valid")
        await expect(a, "! invalid name (1-32 of A-Z a-z 0-9 - _)")
        await a.send("/rename " + "x" * 33)
        await expect(a, "! invalid name (1-32 of A-Z a-z 0-9 - _)")
        await a.send("/whoami")
        assert (await recv(a)).startswith("* whoami id=%d name=alicia room=lobby " % aid)
        await b.send("/kick alice")  # the old name is free again
        await expect(b, "! no such client or room")
        await quiet(c)  # another room hears nothing
        await a.close()
        await probe.line(r"disconnect %d .*" % aid)
        # No join/leave for a rename; the later hooks use the new name.
        assert probe.hooks(aid) == [
            "connect %d / name=alice" % aid,
            "join %d alice lobby" % aid,
            "leave %d alicia lobby -" % aid,
            "disconnect %d alicia 1000" % aid,
        ]
        await b.close()
        await c.close()
    run(go())
    probe.finish()


# ---- visitors ----

def test_rooms_and_members_visitors(probe):
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        c, cid = await join(probe, "carol", room="den")
        d, did = await join(probe, "dave", room="attic")
        await a.send("/list")
        await expect(a, "* list attic=1:dave den=1:carol lobby=2:alice,bob rooms=3 everyone=4")
        await d.send("/move den")
        await expect(d, "* dave joined #den")
        await expect(c, "* dave joined #den")
        await a.send("/list")  # attic is empty: gone
        await expect(a, "* list den=2:carol,dave lobby=2:alice,bob rooms=2 everyone=4")
        await c.close()
        await expect(d, "* carol left #den")
        await a.send("/list")
        await expect(a, "* list den=1:dave lobby=2:alice,bob rooms=2 everyone=3")
        for ws in (a, b, d):
            await ws.close()
    run(go())
    probe.finish()


# ---- client accessors and user data ----

def test_whoami_and_user_data_from_a_header(probe):
    async def go():
        a, aid = await join(probe, "alice", path="/chat", headers={"X-Tag": "blue-42"})
        await a.send("/whoami")
        port = a.local_address[1]
        await expect(a, "* whoami id=%d name=alice room=lobby peer=127.0.0.1:%d path=/chat "
                        "query=name=alice tag=blue-42" % (aid, port))
        b, bid = await join(probe, "bob", room="den")
        await b.send("/whoami")
        port = b.local_address[1]
        await expect(b, "* whoami id=%d name=bob room=den peer=127.0.0.1:%d path=/ "
                        "query=name=bob&room=den tag=-" % (bid, port))
        assert bid == aid + 1  # ids count up from 1
        await a.close()
        await b.close()
    run(go())
    lines = probe.finish()
    assert "connect 1 /chat name=alice" in lines


# ---- post_broadcast from threads ----

def test_post_broadcast_from_a_thread_delivers_in_order(probe):
    async def go():
        a, aid = await join(probe, "alice", room="den")
        b, bid = await join(probe, "bob", room="den", others=[a])
        c, cid = await join(probe, "carol")
        await a.send("/threads 500")
        for ws in (a, b):
            for i in range(1, 501):
                await expect(ws, "* thread line %d/500" % i)
        await quiet(c)  # another room: nothing
        # Two threads at once: each one's lines stay in order.
        await a.send("/threads 300")
        await a.send("/threads 200")
        for ws in (a, b):
            got = [await recv(ws) for _ in range(500)]
            for n in (300, 200):
                assert [l for l in got if l.endswith("/%d" % n)] == ["* thread line %d/%d" % (i, n)
                                                                      for i in range(1, n + 1)]
        for ws in (a, b, c):
            await ws.close()
    run(go())
    probe.finish()


# ---- binary ----

def test_binary(probe):
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/binary")
        got = await recv(a)
        assert got == b"\x00\xff\x01\x80"
        await a.send(b"\x01\x02\x03")  # the hook sees it as binary; the chat refuses it
        await expect(a, "! binary messages are not supported")
        await probe.line(r"message %d alice binary 3" % aid)
        await a.close()
    run(go())
    probe.finish()


# ---- all ends in one server ----

def test_every_kind_of_end_in_one_run(probe):
    """Each connection gets exactly one connect and one disconnect, however
    it ends: close, reset, kick, /quit, HTTP reject, WebSocket reject, /bye
    and the shutdown (checked once the probe has exited)."""
    async def go():
        keep, _ = await join(probe, "keeper")
        a, _ = await join(probe, "a1", others=[keep])
        await a.close()
        s = raw_upgrade(probe.port, "/?name=r1")
        s.recv(1)
        await probe.line(r"join \d+ r1 lobby")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        k, _ = await join(probe, "k1")
        await keep.send("/kick k1")
        await closed_with(k, 4002, "kicked")
        q, _ = await join(probe, "q1")
        await q.send("/quit")
        with pytest.raises(websockets.ConnectionClosed):
            await recv(q)
        s = raw_upgrade(probe.port, "/reject-http")
        read_to_eof(s)
        s.close()
        ws = await websockets.connect(probe.url + "/reject-ws", open_timeout=TIMEOUT)
        await closed_with(ws, 4001, "not today")
        y, _ = await join(probe, "y1")
        await y.send("/bye")
        await closed_with(y, 4003, "bye")
        await probe.line(r"disconnect \d+ y1 4003")
        probe.proc.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.ConnectionClosed):
            while True:  # the notices it was sent, then the close
                await recv(keep)
        assert (keep.close_code, keep.close_reason) == (1001, "server shutting down")
    run(go())
    lines = probe.finish(signalled=True)
    codes = sorted(int(l.split()[-1]) for l in lines if l.startswith("disconnect "))
    assert codes == [403, 1000, 1000, 1001, 1006, 4001, 4002, 4003]
    assert len([l for l in lines if l.startswith("connect ")]) == 8
