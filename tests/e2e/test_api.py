"""The public API as an embedding program sees it: tests/api_probe.c.

api_probe wires every hook of libwschat, logs each hook call as one line on
stdout, exposes the API through its own chat commands (/shout, /all, /to,
/move, /kick, /list, /threads, ...), registered commands (/add, /unjoin,
/myrooms, /say, /posts, ...), HTTP routes, deferred on_connect paths and
two event watchers, and checks, in C, every result the API states
("check FAIL ..." lines). These tests drive it with real clients and
assert both sides: what the clients receive and which hooks ran, in order.

Every test ends with Probe.finish(): SIGTERM, exit status 0 (wschat_server_free()
and uv_loop_close() both returned 0), no "check FAIL" line, nothing from a
sanitizer, and for every connection exactly one connect, then exactly one
disconnect, with join/leave in between and balanced.

The binary comes from $WSCHAT_API_PROBE (meson sets it).
"""
import asyncio
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

from wsutil import (QUIET, TIMEOUT, expect, next_matching, quiet, raw_upgrade,
                    read_to_eof, recv, run_bounded)

PROBE = os.environ.get("WSCHAT_API_PROBE",
                       os.path.join(os.path.dirname(__file__), "..", "..", "build", "tests", "api_probe"))
START_RE = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")
TEST_TIMEOUT = 20  # seconds for a whole test body


def run(coro):
    return run_bounded(coro, TEST_TIMEOUT)

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
    them joins and leaves: a join of a room it is not in, a leave of a room
    it is in (a client may be in several rooms), none left at the end."""
    state = {}  # id -> "open" | "gone"
    rooms = {}  # id -> set of rooms (lower case: names compare so)
    for l in lines:
        m = HOOK_RE.fullmatch(l)
        if not m:
            continue
        kind, cid, rest = m.group(1), int(m.group(2)), m.group(3)
        if kind == "connect":
            assert cid not in state, "second connect of %d:\n%s" % (cid, "\n".join(lines))
            state[cid] = "open"
            rooms[cid] = set()
            continue
        assert state.get(cid) == "open", "%r outside connect..disconnect:\n%s" % (l, "\n".join(lines))
        if kind == "join":
            room = rest.split(" ")[1].lower()
            assert room not in rooms[cid], "join of #%s while in it: %r" % (room, l)
            rooms[cid].add(room)
        elif kind == "leave":
            room = rest.split(" ")[1].lower()
            assert room in rooms[cid], "leave of a room not joined: %r" % l
            rooms[cid].discard(room)
        elif kind == "disconnect":
            assert not rooms[cid], "disconnect while in %s: %r" % (rooms[cid], l)
            state[cid] = "gone"
    assert [c for c, s in state.items() if s != "gone"] == [], "connect without disconnect:\n" + "\n".join(lines)


@pytest.fixture
def probe():
    p = Probe()
    yield p
    p.kill()


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
        await expect(a, "* bob left #lobby (kicked)")  # a close's reason is shown
        await probe.line(r"disconnect %d bob 4002" % bid)
        assert probe.hooks(bid) == [
            "connect %d / name=bob" % bid,
            "join %d bob lobby" % bid,
            "leave %d bob lobby kicked" % bid,
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
    # Headers added in on_connect go with a refusal too.
    assert b"\r\nX-Reason: probe\r\n" in head + b"\r\n", data
    assert re.search(rb"\r\nX-Probe-Id: \d+\r\n", head + b"\r\n"), data
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
        assert probe.hooks(aid)[2:] == ["leave %d alice lobby bye" % aid, "disconnect %d alice 4003" % aid]
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
            "leave %d alice doom doomed" % aid,
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
            "leave %d dan doom doomed" % did,
            "disconnect %d dan 4004" % did,
        ]
    run(go())
    probe.finish()


def test_move_and_home(probe):
    """wschat_client_move() (/move, and /home: move to lobby): notices to
    both rooms, the hooks, and ESAMEROOM / EROOM reported without any hook."""
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
        await a.send("/to bad!room hello")
        await expect(a, "! invalid room name (1-64 of A-Z a-z 0-9 - _ .)")
        await probe.line(r"error %d -3" % aid)
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
                        "query=name=alice tag=blue-42 proto=-" % (aid, port))
        b, bid = await join(probe, "bob", room="den")
        await b.send("/whoami")
        port = b.local_address[1]
        await expect(b, "* whoami id=%d name=bob room=den peer=127.0.0.1:%d path=/ "
                        "query=name=bob&room=den tag=- proto=-" % (bid, port))
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


# ======================================================================
# The API of 0.2: memberships, commands, reserved names, events, posts,
# deferred decisions, subprotocols and headers, HTTP routes.

EVENT_RE = re.compile(r"event (\d+) (\w+) (\S+) (\S+) (\d+) (\S+) :(.*)")


def probe_events(probe):
    """The watcher's lines as (id, kind, room, from, client, to, tail)."""
    out = []
    for l in probe.matching(EVENT_RE.pattern):
        m = EVENT_RE.fullmatch(l)
        out.append((int(m.group(1)), m.group(2), m.group(3), m.group(4), int(m.group(5)),
                    m.group(6), m.group(7)))
    return out


def http(port, method, target, headers=""):
    """A plain HTTP/1.1 request; returns (status, {lower-case name: value}, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        s.sendall(("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n"
                   % (method, target, port, headers)).encode())
        data = read_to_eof(s)  # the server closes after its answer
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), hdrs, body


async def myrooms(ws, want):
    """/myrooms answers "* myrooms A,B current=B n=2" (want: "A,B"). Join
    and leave notices before the answer are skipped: whether a client sees
    its own leave of a room is not stated."""
    await ws.send("/myrooms")
    while True:
        got = await recv(ws)
        if not re.fullmatch(r"\* \S+ (joined|left) #.*", got):
            break
    n = len(want.split(","))
    assert got == "* myrooms %s current=%s n=%d" % (want, want.split(",")[-1], n), got


# ---- memberships: wschat_client_join / _leave / _rooms ----

def test_several_rooms_at_once(probe):
    """/add (wschat_client_join) adds a membership: lines of every room
    reach the member, its own lines go to its current room; /unjoin
    (wschat_client_leave) leaves a named room or the current one; the
    errors come back as ESAMEROOM, ENOTMEMBER, EROOM, ETOOMANY."""
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        c, cid = await join(probe, "carol", room="den")
        await a.send("/add den")
        for ws in (a, c):
            await expect(ws, "* alice joined #den")
        await quiet(b)  # lobby hears of no change: alice is still there
        await myrooms(a, "lobby,den")
        await b.send("in the lobby")
        for ws in (a, b):  # alice is still a member of lobby
            await expect(ws, "[lobby] bob: in the lobby")
        await a.send("in my current room")
        for ws in (a, c):
            await expect(ws, "[den] alice: in my current room")
        await quiet(b)
        await a.send("/add LOBBY")  # a member already (names compare case-insensitively)
        await expect(a, "! already in that room")
        await probe.line(r"error %d -14" % aid)
        await a.send("/add bad!room")
        await expect(a, "! invalid room name (1-64 of A-Z a-z 0-9 - _ .)")
        # At most WSCHAT_OPT_MAX_ROOMS (4 in the probe).
        for r in ("r1", "r2"):
            await a.send("/add " + r)
            await expect(a, "* alice joined #%s" % r)
        await myrooms(a, "lobby,den,r1,r2")
        await a.send("/add r3")
        assert (await recv(a)).startswith("! ")
        await probe.line(r"error %d -16" % aid)
        await myrooms(a, "lobby,den,r1,r2")
        # Leaving: a named room with a reason, then the current one.
        await a.send("/unjoin den gone for lunch")
        await expect(c, "* alice left #den (gone for lunch)")
        await myrooms(a, "lobby,r1,r2")
        await a.send("/unjoin")  # r2, the current room
        await myrooms(a, "lobby,r1")  # the one joined last of those left
        await a.send("/unjoin den")
        assert (await recv(a)).startswith("! ")
        await probe.line(r"error %d -19" % aid)
        await a.send("/unjoin bad!room")
        await expect(a, "! invalid room name (1-64 of A-Z a-z 0-9 - _ .)")
        await a.send("/unjoin r1")
        await myrooms(a, "lobby")
        await a.send("/move den")
        await expect(b, "* alice left #lobby")
        await expect(c, "* alice joined #den")
        await myrooms(a, "den")
        # Leaving the last room puts the client back in lobby.
        await a.send("/unjoin den see you")
        await expect(c, "* alice left #den (see you)")
        await expect(b, "* alice joined #lobby")
        await myrooms(a, "lobby")
        await probe.line(r"message %d alice text /myrooms" % aid, count=8)
        assert probe.hooks(aid)[1:] == [
            "join %d alice lobby" % aid,
            "join %d alice den" % aid,
            "join %d alice r1" % aid,
            "join %d alice r2" % aid,
            "leave %d alice den gone for lunch" % aid,
            "leave %d alice r2 -" % aid,
            "leave %d alice r1 -" % aid,
            "leave %d alice lobby -" % aid,
            "join %d alice den" % aid,
            "leave %d alice den see you" % aid,
            "join %d alice lobby" % aid,
        ]
        for ws in (a, b, c):
            await ws.close()
    run(go())
    probe.finish()


def test_move_keeps_other_memberships(probe):
    """/join (and wschat_client_move) leaves only the current room."""
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/add den")
        await expect(a, "* alice joined #den")
        await a.send("/join attic")
        await expect(a, "* alice joined #attic")
        await myrooms(a, "lobby,attic")
        await a.send("/move cellar")
        await expect(a, "* alice joined #cellar")
        await myrooms(a, "lobby,cellar")
        await a.send("/list")  # den and attic are empty again: gone
        await expect(a, "* list cellar=1:alice lobby=1:alice rooms=2 everyone=1")
        await a.close()
    run(go())
    probe.finish()


def test_rename_in_several_rooms(probe):
    """Each room the client is in sees the rename; each member once."""
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        c, cid = await join(probe, "carol", room="den")
        await a.send("/add den")
        for ws in (a, c):
            await expect(ws, "* alice joined #den")
        await b.send("/add den")  # bob shares both rooms with alice
        for ws in (a, b, c):
            await expect(ws, "* bob joined #den")
        await a.send("/nick al")
        for ws in (a, b, c):
            await expect(ws, "* alice is now known as al")
        for ws in (a, b, c):
            await quiet(ws, 0.2)
        nicks = [e for e in probe_events(probe) if e[1] == "nick"]
        assert sorted((e[2], e[3], e[5]) for e in nicks) == [("den", "alice", "al"),
                                                           ("lobby", "alice", "al")]
        for ws in (a, b, c):
            await ws.close()
    run(go())
    probe.finish()


# ---- rooms kept while empty; quiet rooms ----

def test_keep_room(probe):
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/keep attic")
        await expect(a, "* kept")
        await a.send("/list")
        await expect(a, "* list attic=0: lobby=1:alice rooms=2 everyone=1")
        await a.send("/move attic")
        await expect(a, "* alice joined #attic")
        await a.send("/home")
        await expect(a, "* alice joined #lobby")
        await a.send("/list")  # empty again, but kept
        await expect(a, "* list attic=0: lobby=1:alice rooms=2 everyone=1")
        await a.send("/unkeep attic")
        await expect(a, "* let go")
        await a.send("/list")
        await expect(a, "* list lobby=1:alice rooms=1 everyone=1")
        await a.send("/unkeep attic")
        await expect(a, "! no such client or room")
        await a.send("/keep bad!room")
        await expect(a, "! invalid room name (1-64 of A-Z a-z 0-9 - _ .)")
        await a.close()
    run(go())
    probe.finish()


def test_quiet_room(probe):
    """Above WSCHAT_OPT_QUIET_ROOM members, joins and leaves are no longer
    announced to the room (the joiner still sees its welcome); the
    watchers still see every one. The option applies to what comes next."""
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        await a.send("/quiet -1")
        await expect(a, "! invalid argument")
        await a.send("/quiet 1")
        await expect(a, "* quiet set")
        c, cid = await join(probe, "carol")  # no notice to alice or bob
        await c.close()
        await probe.line(r"disconnect %d carol 1000" % cid)
        for ws in (a, b):
            await quiet(ws)
        assert [(e[1], e[3]) for e in probe_events(probe) if e[3] == "carol"] == \
            [("join", "carol"), ("leave", "carol")]
        await a.send("/quiet 0")  # 0: always announce
        await expect(a, "* quiet set")
        d, did = await join(probe, "dave", others=[a, b])
        for ws in (a, b, d):
            await ws.close()
    run(go())
    probe.finish()


# ---- registered commands ----

PROBE_HELP = [
    "/add ROOM - also enter ROOM",
    "/unjoin [ROOM [REASON]] - leave ROOM (your current room)",
    "/myrooms - the rooms you are in",
    "/say TEXT - probebot says TEXT",
    "/keep ROOM - keep ROOM while empty",
    "/unkeep",
    "/posts N - N posts from a thread",
    "/lookup ID - a client by id",
    "/quiet N - WSCHAT_OPT_QUIET_ROOM",
    "/args ... - the accessors",
    "/latepost - post during the shutdown",
    "/strerror - every error code has its own text",
    "/maybe - passes",
    "/drop - never runs",
]


def test_help_lists_registered_commands(probe):
    """After the built-in ones, in the order registered; removed ones are
    gone (from /help and as commands)."""
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/help")
        lines = (await recv(a)).split("\n")
        assert lines[0] == "* commands:"
        first = lines.index(PROBE_HELP[0])
        assert lines[first:first + len(PROBE_HELP)] == PROBE_HELP, lines
        assert any(l.startswith("/quit") for l in lines[:first]), lines
        assert not any(l.startswith(("/gone", "/long", "/xxxx")) for l in lines), lines
        await a.send("/gone")
        await expect(a, "! unknown command /gone, try /help")
        await a.close()
    run(go())
    probe.finish()


def test_command_accessors_and_verdicts(probe):
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/args  one  two three ")
        await expect(a, "* args name=args args=[one  two three] arg=[one] rest=[two three]")
        await a.send("/ARGS x")  # matched case-insensitively; the name as typed
        await expect(a, "* args name=ARGS args=[x] arg=[x] rest=[]")
        await a.send("/args")
        await expect(a, "* args name=args args=[] arg=[] rest=[]")
        await a.send("/args \u00e9t\u00e9 \u2713")
        await expect(a, "* args name=args args=[\u00e9t\u00e9 \u2713] arg=[\u00e9t\u00e9] rest=[\u2713]")
        # A command returning WSCHAT_PASS: the chat answers "unknown".
        await a.send("/maybe so")
        await expect(a, "! unknown command /maybe, try /help")
        # on_message runs first: it drops /drop, the registered /drop never runs.
        await a.send("/drop")
        await quiet(a)
        # on_message may rewrite a line into a registered command.
        await a.send("/shout /args x y")
        await expect(a, "* args name=ARGS args=[X Y] arg=[X] rest=[Y]")
        # Plain lines and // lines are not commands.
        await a.send("//args x")
        await expect(a, "[lobby] alice: /args x")
        await a.close()
    run(go())
    probe.finish()


# ---- reserved names and wschat_server_say ----

def test_say_and_reserved_name(probe):
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        await a.send("/say hello from the app")
        for ws in (a, b):
            await expect(ws, "[lobby] probebot: hello from the app")
        # No client takes the reserved name.
        g = await websockets.connect(probe.url + "/?name=probebot", open_timeout=TIMEOUT)
        m = re.fullmatch(r"\* welcome, (guest-\d+)! you are in #lobby; type /help for commands", await recv(g))
        assert m
        guest = m.group(1)
        assert (await recv(g)).startswith("! ")
        for ws in (a, b):
            await expect(ws, "* %s joined #lobby" % guest)
        await g.send("/nick probebot")
        assert (await recv(g)).startswith("! ")
        await g.send("/rename probebot")  # wschat_client_rename: ERESERVED
        assert (await recv(g)).startswith("! ")
        gid = int((await probe.line(r"join (\d+) %s lobby" % guest)).split()[1])
        await probe.line(r"error %d -18" % gid)
        for ws in (a, b):
            await quiet(ws, 0.1)
        # ... except through wschat_client_set_name() in on_connect.
        p = await websockets.connect(probe.url + "/as/probebot", open_timeout=TIMEOUT)
        await expect(p, WELCOME % ("probebot", "lobby"))
        line = await probe.line(r"set_name \d+ probebot 0")
        await p.send("/whoami")
        assert (await recv(p)).startswith("* whoami id=%s name=probebot " % line.split()[1])
        for ws in (a, b, g, p):
            await ws.close()
    run(go())
    probe.finish()


# ---- on_connect powers: name, room, subprotocol, headers ----

def test_set_name_and_room_in_on_connect(probe):
    async def go():
        z = await websockets.connect(probe.url + "/as/zed/in/attic?name=ignored&room=ignored",
                                     open_timeout=TIMEOUT)
        await expect(z, WELCOME % ("zed", "attic"))  # instead of ?name= and ?room=
        zid = int((await probe.line(r"set_name (\d+) zed 0")).split()[1])
        await probe.line(r"set_room %d attic 0" % zid)
        await probe.line(r"join %d zed attic" % zid)
        # Errors leave the client as it was: ?name= and ?room= apply.
        b = await websockets.connect(probe.url + "/as/bad!name/in/bad!room?name=bob&room=den",
                                     open_timeout=TIMEOUT)
        await expect(b, WELCOME % ("bob", "den"))
        await probe.line(r"set_name \d+ bad!name -2")
        await probe.line(r"set_room \d+ bad!room -3")
        t = await websockets.connect(probe.url + "/as/ZED", open_timeout=TIMEOUT)  # taken
        assert re.fullmatch(r"\* welcome, guest-\d+! you are in #lobby; .*", await recv(t))
        await probe.line(r"set_name \d+ ZED -10")
        for ws in (z, b, t):
            await ws.close()
    run(go())
    probe.finish()


def test_subprotocol_and_added_headers(probe):
    async def go():
        a = await websockets.connect(probe.url + "/?name=alice", subprotocols=["probe.v1", "probe.v2"],
                                     open_timeout=TIMEOUT)
        assert a.subprotocol == "probe.v2"
        await expect(a, WELCOME % ("alice", "lobby"))
        aid = int((await probe.line(r"connect (\d+) / name=alice")).split()[1])
        assert a.response_headers["X-Probe-Id"] == str(aid)
        await probe.line(r"protocols %d probe\.v1, ?probe\.v2" % aid)
        await a.send("/whoami")
        assert (await recv(a)).endswith(" proto=probe.v2")
        b = await websockets.connect(probe.url + "/?name=bob", subprotocols=["probe.v1"],
                                     open_timeout=TIMEOUT)
        assert b.subprotocol == "probe.v1"
        c = await websockets.connect(probe.url + "/?name=carol", subprotocols=["other"],
                                     open_timeout=TIMEOUT)
        assert c.subprotocol is None
        assert "Sec-WebSocket-Protocol" not in c.response_headers
        await expect(c, WELCOME % ("carol", "lobby"))
        await c.send("/whoami")
        assert (await recv(c)).endswith(" proto=-")
        m = await websockets.connect(probe.url + "/many-headers", open_timeout=TIMEOUT)
        for i in range(1, 16):
            assert m.response_headers["X-H%d" % i] == "X-H%d" % i
        assert "X-H16" not in m.response_headers  # the 17th was refused
        g = await websockets.connect(probe.url + "/big-headers", open_timeout=TIMEOUT)
        assert g.response_headers["X-Big1"] == "b" * 3000
        assert "X-Big2" not in g.response_headers  # over 4 KiB in all
        for ws in (a, b, c, m, g):
            await ws.close()
    run(go())
    probe.finish()


# ---- deferred decisions, made by a post from another thread ----

def test_deferred_accept(probe):
    async def go():
        t0 = time.monotonic()
        d = await websockets.connect(probe.url + "/defer/accept?name=zed", open_timeout=TIMEOUT)
        assert time.monotonic() - t0 >= 0.09  # the verdict came after 100 ms
        did = int((await probe.line(r"connect (\d+) /defer/accept name=zed")).split()[1])
        assert d.response_headers["X-Decided"] == "accept"
        assert d.response_headers["X-Probe-Id"] == str(did)
        # Named and placed while deferred; the welcome, then what was sent after accept().
        await expect(d, WELCOME % ("dfr-%d" % did, "den"), "* accepted")
        await probe.line(r"decide %d accept" % did)
        await d.send("hi")
        await expect(d, "[den] dfr-%d: hi" % did)
        await d.close()
        await probe.line(r"disconnect %d .*" % did)
        assert probe.hooks(did) == [
            "connect %d /defer/accept name=zed" % did,
            "join %d dfr-%d den" % (did, did),
            "leave %d dfr-%d den -" % (did, did),
            "disconnect %d dfr-%d 1000" % (did, did),
        ]
    run(go())
    probe.finish()


def test_deferred_reject_with_www_authenticate(probe):
    s = raw_upgrade(probe.port, "/defer/reject")
    try:
        data = read_to_eof(s)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 401 "), data
    assert "WWW-Authenticate: Bearer" in lines[1:], data
    assert body == b"bad token\n"
    did = int(probe.wait_line(r"connect (\d+) /defer/reject -").split()[1])
    probe.wait_line(r"disconnect %d .*" % did)
    assert probe.hooks(did) == ["connect %d /defer/reject -" % did, "disconnect %d - 401" % did]
    assert probe.matching(r"decide %d .*" % did) == ["decide %d reject" % did]
    probe.finish()


def test_close_during_the_clients_own_exit_waits_for_it(probe):
    """on_leave of the client's own /quit asks to close it again: refused
    (ECLOSED, checked in C), so every on_leave comes before on_disconnect
    and the close keeps the /quit's code and reason."""
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/add second")
        await expect(a, "* alice joined #second")
        await a.send("/quit close-me")
        await closed_with(a, 1000, "close-me")
        return aid
    aid = run(go())
    probe.wait_line(r"disconnect %d .*" % aid)
    hooks = probe.hooks(aid)
    assert hooks[-1].startswith("disconnect %d " % aid), hooks
    leaves = [h for h in hooks if h.startswith("leave ")]
    assert len(leaves) == 2 and all(h.endswith(" close-me") for h in leaves), hooks
    probe.finish()


def test_deferral_after_a_shutdown_begun_in_on_connect_is_answered_at_once(probe):
    t0 = time.monotonic()
    s = raw_upgrade(probe.port, "/halt-defer")
    try:
        data = read_to_eof(s)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 503 "), data
    assert time.monotonic() - t0 < 1.0
    assert probe.proc.wait(timeout=10) == 0  # the shutdown finished by itself
    probe.finish()
    hid = int(probe.matching(r"connect \d+ /halt-defer -")[0].split()[1])
    assert probe.hooks(hid) == ["connect %d /halt-defer -" % hid, "disconnect %d - 503" % hid]


def test_deferral_taken_back_inside_on_connect_reject(probe):
    """defer() then reject() in the same on_connect: answered at once, not
    after the handshake timeout (2 s in the probe)."""
    t0 = time.monotonic()
    s = raw_upgrade(probe.port, "/undefer/reject")
    try:
        data = read_to_eof(s)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 403 "), data
    assert data.endswith(b"\r\n\r\nchanged my mind\n"), data
    assert time.monotonic() - t0 < 1.0
    probe.finish()


def test_deferral_taken_back_inside_on_connect_accept(probe):
    async def go():
        t0 = time.monotonic()
        ws = await websockets.connect(probe.url + "/undefer/accept", open_timeout=TIMEOUT)
        line = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert line.startswith("* welcome, "), line
        assert time.monotonic() - t0 < 1.0
        await ws.close()
    run(go())
    probe.finish()


def test_deferred_close_is_a_websocket_reject(probe):
    async def go():
        ws = await websockets.connect(probe.url + "/defer/close", open_timeout=TIMEOUT)
        await closed_with(ws, 4006, "closed while deferred")
        did = int((await probe.line(r"connect (\d+) /defer/close -")).split()[1])
        await probe.line(r"disconnect %d .*" % did)
        assert probe.hooks(did) == ["connect %d /defer/close -" % did, "disconnect %d - 4006" % did]
    run(go())
    probe.finish()


def test_deferred_too_long_is_503_and_the_late_verdict_finds_nobody(probe):
    """No verdict within WSCHAT_OPT_HANDSHAKE_TIMEOUT_MS (2 s in the probe):
    503; the verdict posted later finds no client by that id."""
    t0 = time.monotonic()
    s = raw_upgrade(probe.port, "/defer/late")
    try:
        s.settimeout(6)
        data = read_to_eof(s)
    finally:
        s.close()
    took = time.monotonic() - t0
    assert data.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable", data
    assert 1.5 <= took <= 4, took
    did = int(probe.wait_line(r"connect (\d+) /defer/late -").split()[1])
    probe.wait_line(r"decide %d gone" % did, timeout=5)
    assert probe.hooks(did) == ["connect %d /defer/late -" % did, "disconnect %d - 503" % did]
    probe.finish()


def test_deferred_client_does_not_block_others(probe):
    async def go():
        a, aid = await join(probe, "alice")
        pending = asyncio.ensure_future(
            websockets.connect(probe.url + "/defer/accept", open_timeout=TIMEOUT))
        await probe.line(r"connect \d+ /defer/accept -")
        await a.send("meanwhile")
        await expect(a, "[lobby] alice: meanwhile")
        d = await pending
        did = int(probe.matching(r"connect \d+ /defer/accept -")[0].split()[1])
        await expect(d, WELCOME % ("dfr-%d" % did, "den"), "* accepted")
        await d.close()
        await a.close()
    run(go())
    probe.finish()


# ---- wschat_server_client ----

def test_lookup_by_id(probe):
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", others=[a])
        await a.send("/lookup %d" % bid)
        await expect(a, "* lookup %d bob" % bid)
        await b.close()
        await expect(a, "* bob left #lobby")
        await probe.line(r"disconnect %d .*" % bid)
        for id_ in (bid, 0, 999999):  # gone, never was
            await a.send("/lookup %d" % id_)
            await expect(a, "* lookup %d -" % id_)
        await a.close()
    run(go())
    probe.finish()


# ---- wschat_server_post from threads ----

def test_post_from_threads_runs_in_order(probe):
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/posts 300")
        for i in range(1, 301):
            await expect(a, "* post %d/300" % i)
        await a.send("/posts 200")
        await a.send("/posts 100")
        got = [await recv(a) for _ in range(300)]
        for n in (200, 100):
            assert [l for l in got if l.endswith("/%d" % n)] == ["* post %d/%d" % (i, n)
                                                                  for i in range(1, n + 1)]
        await quiet(a)
        await a.close()
    run(go())
    probe.finish()


# ---- HTTP routes ----

def test_http_routes(probe):
    port = probe.port
    status, hdrs, body = http(port, "GET", "/probe/status?a=1", "X-Tag: blue\r\n")
    assert status == 200 and hdrs["x-route"] == "status", (status, hdrs)
    assert hdrs["content-type"] == "text/plain; charset=utf-8"
    assert re.fullmatch(rb"ok method=GET path=/probe/status query=a=1 tag=blue rooms=\d+ clients=0\n",
                        body), body
    assert int(hdrs["content-length"]) == len(body)
    status, hdrs, head_body = http(port, "HEAD", "/probe/status")
    assert status == 200 and head_body == b""
    assert int(hdrs["content-length"]) == len(body.replace(b"GET", b"HEAD").replace(b"a=1", b"-")
                                              .replace(b"blue", b"-"))
    # Prefixes; the longest match wins.
    status, hdrs, body = http(port, "GET", "/probe/some/file.js")
    assert (status, hdrs["content-type"], body) == (200, "text/x-probe",
                                                    b"prefix /probe/ path=/probe/some/file.js")
    status, _, body = http(port, "GET", "/probe/deep/x")
    assert (status, body) == (200, b"prefix /probe/deep/ path=/probe/deep/x")
    status, _, body = http(port, "GET", "/probe/deep")
    assert (status, body) == (200, b"prefix /probe/ path=/probe/deep")
    assert http(port, "GET", "/probe/silent")[0] == 500  # the route did not answer
    status, _, body = http(port, "GET", "/probe/bad")
    assert (status, body) == (404, b"nope")
    # Built-in answers where no route is registered.
    assert http(port, "GET", "/healthz")[0] == 200
    assert http(port, "GET", "/elsewhere")[0] == 404
    assert http(port, "GET", "/")[0] == 426
    assert http(port, "POST", "/probe/status", "Content-Length: 0\r\n")[0] == 405
    probe.wait_line(r"http GET /probe/bad -")  # the probe's log is read by a thread
    assert probe.matching(r"http .*") == [
        "http GET /probe/status a=1",
        "http HEAD /probe/status -",
        "http GET /probe/some/file.js -",
        "http GET /probe/deep/x -",
        "http GET /probe/deep -",
        "http GET /probe/silent -",
        "http GET /probe/bad -",
    ]

    async def go():  # an upgrade to a routed path is a WebSocket client
        ws = await websockets.connect(probe.url + "/probe/status?name=alice", open_timeout=TIMEOUT)
        await expect(ws, WELCOME % ("alice", "lobby"))
        await probe.line(r"connect \d+ /probe/status name=alice")
        await ws.close()
    run(go())
    probe.finish()


# ---- events: the watchers ----

def test_events_in_order(probe):
    """A scripted session; the first watcher logs each event. Ids strictly
    increase; an event caused inside a watcher (the "echoed" answer to
    "echo-me") is watched after the one that caused it; the second
    watcher saw the same events in the same order (checked in C)."""
    async def go():
        a, aid = await join(probe, "alice")
        b, bid = await join(probe, "bob", room="den")
        await a.send("hello")
        await expect(a, "[lobby] alice: hello")
        await a.send("/me waves")
        await expect(a, "* alice waves")
        await a.send("/add den")
        for ws in (a, b):
            await expect(ws, "* alice joined #den")
        await a.send("/nick al")
        for ws in (a, b):
            await expect(ws, "* alice is now known as al")
        await a.send("/whisper bob psst")
        await expect(b, "[whisper from al] psst")
        await expect(a, "[whisper to bob] psst")
        await a.send("/all hi all")
        await expect(b, "hi all")
        await a.send("/to den to den")
        for ws in (a, b):
            await expect(ws, "to den")
        await a.send("/say beep")
        for ws in (a, b):
            await expect(ws, "[den] probebot: beep")
        await a.send("echo-me")
        for ws in (a, b):
            await expect(ws, "[den] al: echo-me", "[den] probebot: echoed")
        await a.send("/unjoin den see ya")
        await expect(b, "* al left #den (see ya)")
        await myrooms(a, "lobby")
        await a.send("/join attic")
        await next_matching(a, re.escape("* al joined #attic"))
        await b.send("/quit bye")
        with pytest.raises(websockets.ConnectionClosed):
            await recv(b)
        await a.close()
        await probe.line(r"event \d+ leave attic al .*")
        return aid, bid
    aid, bid = run(go())
    evs = probe_events(probe)
    ids = [e[0] for e in evs]
    assert all(x < y for x, y in zip(ids, ids[1:])), ids
    got = [e[1:] for e in evs]
    # A rename makes one NICK per room, in no stated order.
    expected = [
        ("join", "lobby", "alice", aid, "-", ""),
        ("join", "den", "bob", bid, "-", ""),
        ("message", "lobby", "alice", aid, "-", "hello"),
        ("action", "lobby", "alice", aid, "-", "waves"),
        ("join", "den", "alice", aid, "-", ""),
        "NICK", "NICK",
        ("whisper", "-", "al", aid, "bob", "psst"),
        ("notice", "-", "-", 0, "-", "hi all"),
        ("notice", "den", "-", 0, "-", "to den"),
        ("message", "den", "probebot", 0, "-", "beep"),
        ("message", "den", "al", aid, "-", "echo-me"),
        ("message", "den", "probebot", 0, "-", "echoed"),
        ("leave", "den", "al", aid, "-", "see ya"),
        ("leave", "lobby", "al", aid, "-", ""),
        ("join", "attic", "al", aid, "-", ""),
        ("leave", "den", "bob", bid, "-", "bye"),
        ("leave", "attic", "al", aid, "-", ""),
    ]
    assert len(got) == len(expected), "\n".join(map(str, got))
    for i, (g, e) in enumerate(zip(got, expected)):
        if e == "NICK":
            assert g[0] == "nick", (i, g)
        else:
            assert g == e, (i, g, e)
    assert sorted(g for g in got if g[0] == "nick") == [("nick", "den", "alice", aid, "al", ""),
                                                        ("nick", "lobby", "alice", aid, "al", "")]
    probe.finish()


def test_post_during_the_shutdown_runs_once(probe):
    """/latepost: on SIGTERM the probe calls wschat_server_post() right
    after wschat_server_shutdown(), with a client still open: the call
    succeeds and fn runs once, while the shutdown finishes."""
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/latepost")
        await expect(a, "* will post during the shutdown")
        probe.proc.send_signal(signal.SIGTERM)
        await closed_with(a, 1001, "server shutting down")
    run(go())
    lines = probe.finish(signalled=True)
    assert lines.count("late post ran") == 1
    assert lines.index("late post ran") < lines.index("shutdown")


def test_post_during_the_shutdown_of_an_idle_server_runs_once(probe):
    """The same with no client left: the shutdown has begun, not finished
    (its callback has not run), so the post must still be taken."""
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/latepost")
        await expect(a, "* will post during the shutdown")
        await a.close()
        await probe.line(r"disconnect %d alice 1000" % aid)
    run(go())
    lines = probe.finish()
    assert lines.count("late post ran") == 1
    assert lines.index("late post ran") < lines.index("shutdown")


def test_strerror_has_a_text_for_every_code(probe):
    """/strerror: wschat_strerror() of every enum wschat_error value is its
    own text, and differs from an unknown code's."""
    async def go():
        a, aid = await join(probe, "alice")
        await a.send("/strerror")
        await expect(a, "* strerror ok")
        await a.close()
    run(go())
    probe.finish()
