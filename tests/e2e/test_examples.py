"""The examples (examples/*.c) as a user runs them, driven by real clients.

- roll:   its /roll through on_message, its timer broadcasts, the built-in
          chat beside them, 1001 on shutdown.
- bot:    registered /roll and /kick answered through wschat_server_say()
          as the reserved name "dicebot", listed by /help; a watcher greets
          every join; nobody can take the name dicebot.
- bridge: one JSON line per event on stdout, ids strictly increasing, for
          a scripted session; a second watcher answers /stats.
- auth:   a token from the query, a subprotocol or an Authorization
          header, checked on a thread while the answer is deferred; 401
          with WWW-Authenticate for a bad or missing one; a slow check
          blocks nobody; a client gone before its verdict; 503 to one
          waiting at shutdown.
- history_mem: a history store of the program's own (in memory): a
          joiner's replay ("[history] " lines), JSON history objects,
          requests and recovery with ?since=&epoch= all come from it, with
          its ids (from 1000000) and its epoch; reads that reach an event
          its ring dropped say so; /recap reads it through
          wschat_server_read_history().

Every example must exit 0 on SIGTERM (the server freed, the loop closed).
The binaries come from $WSCHAT_ROLL, $WSCHAT_BOT, $WSCHAT_BRIDGE,
$WSCHAT_AUTH and $WSCHAT_HISTORY_MEM (meson sets them).
"""
import asyncio
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import websockets

from wsutil import (TIMEOUT, expect, next_matching, quiet, raw_upgrade, recv,
                    run_bounded)

HERE = os.path.dirname(__file__)
BUILD = os.path.join(HERE, "..", "..", "build", "examples")
BINARIES = {name: os.environ.get("WSCHAT_" + name.upper(), os.path.join(BUILD, name))
            for name in ("roll", "bot", "bridge", "auth", "history_mem")}
START_RE = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")
TEST_TIMEOUT = 30  # seconds for a whole test body


def run(coro):
    return run_bounded(coro, TEST_TIMEOUT)
WELCOME = "* welcome, %s! you are in #%s; type /help for commands"


class Example:
    """A running example; stdout and stderr are collected line by line by
    two threads (nothing blocks on a full pipe)."""

    def __init__(self, name, *args):
        self.proc = subprocess.Popen([BINARIES[name]] + [str(a) for a in args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.out, self.err = [], []
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._read, args=(f, l), daemon=True)
                         for f, l in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()
        first = self.wait(r"listening on ws://.*", stream="any", timeout=10)
        self.port = int(START_RE.fullmatch(first).group(1))
        self.url = "ws://127.0.0.1:%d/" % self.port

    def _read(self, f, into):
        for line in f:
            with self._cond:
                into.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait(self, pattern, stream="out", timeout=TIMEOUT, count=1):
        """Blocks until count lines of stream fullmatch pattern; returns the last."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                lines = {"out": self.out, "err": self.err, "any": self.out + self.err}[stream]
                found = [l for l in lines if re.fullmatch(pattern, l)]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError("no line %r (x%d); stdout:\n%s\nstderr:\n%s"
                                         % (pattern, count, "\n".join(self.out[-50:]),
                                            "\n".join(self.err[-50:])))
                self._cond.wait(min(left, 0.1))

    def stop(self, signalled=False):
        """SIGTERM (unless signalled says the test sent it: a second one
        would kill a program whose signal handles are closed by then);
        returns the exit status (None if it had to be killed)."""
        if not signalled and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            rc = None
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def assert_clean_exit(self, signalled=False):
        rc = self.stop(signalled)
        err = "\n".join(self.err)
        assert "Sanitizer" not in err and "runtime error:" not in err, err[-4000:]
        assert rc == 0, "exit status %r; stderr:\n%s" % (rc, err[-2000:])


@pytest.fixture
def start():
    """Factory: start("bot", 0) -> Example (killed at teardown if still running)."""
    started = []

    def _start(name, *args):
        e = Example(name, *args)
        started.append(e)
        return e

    yield _start
    for e in started:
        if e.proc.poll() is None:
            e.proc.kill()
        e.stop(signalled=True)


async def connect(url, **kw):
    kw.setdefault("open_timeout", TIMEOUT)
    return await websockets.connect(url, **kw)


def read_response(s, timeout=TIMEOUT):
    """Reads an HTTP answer to EOF: (status, {lower-case name: value}, body)."""
    s.settimeout(timeout)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


# ---------------------------------------------------------------- roll

def test_roll_command_and_announcements(start):
    roll = start("roll", 0, 300)

    async def go():
        async with websockets.connect(roll.url + "?name=alice") as a, \
                websockets.connect(roll.url + "?name=bob") as b:
            await a.send("/roll 20")
            for ws in (a, b):  # the whole room sees the roll
                line = await next_matching(ws, r"\* alice rolls a d20: \d+")
                assert 1 <= int(line.rsplit(" ", 1)[1]) <= 20
            await a.send("/roll 1")
            assert await next_matching(a, r"!.*") == "! usage: /roll [SIDES] (2 to 1000)"
            await a.send("/rollover")  # not /roll: the chat's own answer
            assert await next_matching(a, r"!.*") == "! unknown command /rollover, try /help"
            await a.send("plain line")  # the built-in chat still works
            assert await next_matching(b, r"\[lobby\].*") == "[lobby] alice: plain line"
            first = await next_matching(b, r"\* announcement #\d+ from the host")
            second = await next_matching(b, r"\* announcement #\d+ from the host")
            assert int(second.split("#")[1].split()[0]) == int(first.split("#")[1].split()[0]) + 1

    run(go())
    roll.assert_clean_exit()


def test_roll_clients_get_1001_when_the_host_shuts_down(start):
    roll = start("roll", 0, 300)

    async def go():
        async with websockets.connect(roll.url) as a:
            await a.recv()
            roll.proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(a.recv(), 5)
            assert a.close_code == 1001

    run(go())
    roll.assert_clean_exit(signalled=True)


# ---------------------------------------------------------------- bot

BOT_GREETING = "[%s] dicebot: welcome to #%s, %s! try /roll 2d6"


async def bot_join(bot, name, room="lobby", others=()):
    """Connects name; checks its welcome, dicebot's greeting to it and to
    the others in the room."""
    ws = await connect(bot.url + "?name=%s&room=%s" % (name, room))
    await expect(ws, WELCOME % (name, room))
    greeting = BOT_GREETING % (room, room, name)
    await next_matching(ws, re.escape(greeting))
    for o in others:
        await expect(o, "* %s joined #%s" % (name, room), greeting)
    return ws


def test_bot_greets_every_join(start):
    """The watcher sees each JOIN (on connect and on /join) and answers
    through wschat_server_say(): rendered like any client's line."""
    bot = start("bot", 0)

    async def go():
        a = await bot_join(bot, "alice")
        b = await bot_join(bot, "bob", others=[a])
        await b.send("/join dev")
        await expect(b, "* bob joined #dev", BOT_GREETING % ("dev", "dev", "bob"))
        await expect(a, "* bob left #lobby")
        await quiet(a)  # the greeting went to #dev only
        await a.close()
        await b.close()

    run(go())
    bot.assert_clean_exit()


def test_bot_roll(start):
    bot = start("bot", 0)

    async def go():
        a = await bot_join(bot, "alice")
        b = await bot_join(bot, "bob", others=[a])
        await a.send("/roll 3d6")
        for ws in (a, b):  # the whole room sees dicebot's line
            line = await recv(ws)
            m = re.fullmatch(r"\[lobby\] dicebot: alice rolls 3d6: (\d+) \+ (\d+) \+ (\d+) = (\d+)", line)
            assert m, line
            dice = [int(x) for x in m.groups()[:3]]
            assert all(1 <= d <= 6 for d in dice) and sum(dice) == int(m.group(4))
        await b.send("/roll d20")
        for ws in (a, b):
            m = re.fullmatch(r"\[lobby\] dicebot: bob rolls 1d20: (\d+)", await recv(ws))
            assert m and 1 <= int(m.group(1)) <= 20
        await b.send("/ROLL")  # commands match case-insensitively; default 1d6
        for ws in (a, b):
            assert re.fullmatch(r"\[lobby\] dicebot: bob rolls 1d6: [1-6]", await recv(ws))
        await b.send("/roll   100 ")  # arguments are trimmed
        for ws in (a, b):
            assert re.fullmatch(r"\[lobby\] dicebot: bob rolls 1d100: \d+", await recv(ws))
        usage = "! usage: /roll [N]dM, e.g. /roll 2d6 (1-20 dice of 2-1000 sides)"
        for bad in ("/roll 0d6", "/roll 2d1", "/roll 21d6", "/roll abc", "/roll 2d", "/roll -3"):
            await a.send(bad)
            await expect(a, usage)
        await quiet(b)  # errors go to the sender only
        await a.send("/rollover")  # not a registered command
        await expect(a, "! unknown command /rollover, try /help")
        await a.send("plain line")  # the built-in chat is still there
        for ws in (a, b):
            await expect(ws, "[lobby] alice: plain line")
        await a.close()
        await b.close()

    run(go())
    bot.assert_clean_exit()


def test_bot_help_lists_registered_commands(start):
    bot = start("bot", 0)

    async def go():
        a = await bot_join(bot, "alice")
        await a.send("/help")
        text = await recv(a)
        lines = text.split("\n")
        assert lines[0] == "* commands:", text
        roll = "/roll [N]dM - roll N dice of M sides (default 1d6)"
        kick = "/kick NAME - disconnect NAME"
        assert roll in lines and kick in lines, text
        # After the built-in ones, in the order registered.
        assert lines.index("/help - this list") < lines.index(roll) < lines.index(kick), text
        assert any(l.startswith("/quit") for l in lines[:lines.index(roll)]), text
        await a.close()

    run(go())
    bot.assert_clean_exit()


def test_bot_kick_shows_the_reason(start):
    """/kick NAME: wschat_client_close(1008, "kicked by X"); the kicked
    client gets the reason in its close frame, its room in the notice."""
    bot = start("bot", 0)

    async def go():
        a = await bot_join(bot, "alice")
        b = await bot_join(bot, "bob", others=[a])
        c = await bot_join(bot, "carol", others=[a, b])
        await a.send("/kick BOB")  # names are found case-insensitively
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await recv(b)
        assert (b.close_code, b.close_reason) == (1008, "kicked by alice")
        for ws in (a, c):
            await expect(ws, "* bob left #lobby (kicked by alice)")
        await a.send("/kick bob")  # gone
        await expect(a, "! no such user: bob")
        await a.send("/kick alice")
        await expect(a, "! to leave, type /quit")
        await a.send("/kick")
        await expect(a, "! usage: /kick NAME")
        await a.send("/kick dicebot")  # a reserved name is not a client
        await expect(a, "! no such user: dicebot")
        await quiet(c)
        await a.close()
        await c.close()

    run(go())
    bot.assert_clean_exit()


def test_bot_name_is_reserved(start):
    """No client takes "dicebot": ?name= gets a guest name and a "! " line,
    /nick is refused with a "! " line; the others hear of no rename."""
    bot = start("bot", 0)

    async def go():
        a = await bot_join(bot, "alice")
        ws = await connect(bot.url + "?name=dicebot")
        welcome = await recv(ws)
        m = re.fullmatch(r"\* welcome, (guest-\d+)! you are in #lobby; type /help for commands", welcome)
        assert m, welcome
        guest = m.group(1)
        err = await next_matching(ws, r"!.*")
        assert "dicebot" in err, err
        await next_matching(a, re.escape("* %s joined #lobby" % guest))
        await ws.send("/nick dicebot")
        err = await next_matching(ws, r"!.*")
        assert "dicebot" in err, err
        await ws.send("/nick gus")  # the connection is fine: another name works
        await expect(ws, "* %s is now known as gus" % guest)
        await next_matching(a, re.escape("* %s is now known as gus" % guest))
        await quiet(a)
        await ws.close()
        await a.close()

    run(go())
    bot.assert_clean_exit()


def test_bot_name_is_reserved_regardless_of_case(start):
    """Names are unique regardless of case (README), reserved ones too."""
    bot = start("bot", 0)

    async def go():
        ws = await connect(bot.url + "?name=DiceBot")
        assert re.fullmatch(r"\* welcome, guest-\d+! .*", await recv(ws))
        await ws.send("/nick DICEBOT")
        assert (await next_matching(ws, r"[!*] .*")).startswith("! ")
        await ws.close()

    run(go())
    bot.assert_clean_exit()


def test_bot_clients_get_1001_on_shutdown(start):
    """The server's own loop with the program's signal handles on it: a
    SIGTERM closes every client with 1001 and the program exits 0."""
    bot = start("bot", 0)

    async def go():
        a = await bot_join(bot, "alice")
        bot.proc.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await recv(a, 5)
        assert a.close_code == 1001

    run(go())
    bot.assert_clean_exit(signalled=True)


# ---------------------------------------------------------------- bridge

def events(bridge):
    return [json.loads(l) for l in bridge.out]


def test_bridge_prints_every_event_in_order(start):
    bridge = start("bridge", 0)
    assert bridge.out == []  # the start line went to stderr

    async def go():
        a = await connect(bridge.url + "?name=alice")
        await expect(a, WELCOME % ("alice", "lobby"))
        b = await connect(bridge.url + "?name=bob")
        await expect(b, WELCOME % ("bob", "lobby"))
        await expect(a, "* bob joined #lobby")
        await a.send('hello "there" \\ caf\u00e9 \u2713')
        for ws in (a, b):
            await expect(ws, '[lobby] alice: hello "there" \\ caf\u00e9 \u2713')
        await a.send("/me waves")
        for ws in (a, b):
            await expect(ws, "* alice waves")
        await b.send("/join dev")
        await expect(b, "* bob joined #dev")
        await expect(a, "* bob left #lobby")
        await a.send("/whisper bob psst")
        await expect(b, "[whisper from alice] psst")
        await expect(a, "[whisper to bob] psst")
        await a.send("/nick alicia")
        await expect(a, "* alice is now known as alicia")
        await b.send("said in dev")
        await expect(b, "[dev] bob: said in dev")
        await b.send("/leave")
        await expect(b, "* bob joined #lobby")
        await expect(a, "* bob joined #lobby")
        await b.send("/quit gone fishing")
        await expect(a, "* bob left #lobby (gone fishing)")
        await a.close()
        bridge.wait(r'\{.*"kind":"leave".*"from":"alicia".*\}')

    run(go())
    evs = events(bridge)
    ids = [e["id"] for e in evs]
    assert all(x < y for x, y in zip(ids, ids[1:])), ids
    now = time.time() * 1000
    assert all(now - 60000 < e["time"] <= now + 1000 for e in evs), evs
    times = [e["time"] for e in evs]
    assert times == sorted(times), times
    got = [(e["kind"], e["room"], e["from"], e["to"], e["text"], e["reason"]) for e in evs]
    assert got == [
        ("join", "lobby", "alice", None, "", None),
        ("join", "lobby", "bob", None, "", None),
        ("message", "lobby", "alice", None, 'hello "there" \\ caf\u00e9 \u2713', None),
        ("action", "lobby", "alice", None, "waves", None),
        ("leave", "lobby", "bob", None, "", None),
        ("join", "dev", "bob", None, "", None),
        ("whisper", None, "alice", "bob", "psst", None),
        ("nick", "lobby", "alice", "alicia", "", None),
        ("message", "dev", "bob", None, "said in dev", None),
        ("leave", "dev", "bob", None, "", None),
        ("join", "lobby", "bob", None, "", None),
        ("leave", "lobby", "bob", None, "", "gone fishing"),
        ("leave", "lobby", "alicia", None, "", None),
    ], "\n".join(bridge.out)
    # Client ids: alice's events carry hers, bob's his; distinct, nonzero.
    alice = {e["client"] for e in evs if e["from"] in ("alice", "alicia")}
    bob = {e["client"] for e in evs if e["from"] == "bob"}
    assert len(alice) == 1 and len(bob) == 1 and alice != bob and 0 not in alice | bob, evs
    bridge.assert_clean_exit()


def test_bridge_stats_from_a_second_watcher(start):
    bridge = start("bridge", 0)

    async def go():
        a = await connect(bridge.url + "?name=alice")
        await expect(a, WELCOME % ("alice", "lobby"))
        await a.send("/stats")
        await expect(a, "* no lines yet")
        for i in range(3):
            await a.send("line %d" % i)
            await expect(a, "[lobby] alice: line %d" % i)
        await a.send("/me counts too")
        await expect(a, "* alice counts too")
        await a.send("/join dev")
        await expect(a, "* alice joined #dev")
        await a.send("in dev")
        await expect(a, "[dev] alice: in dev")
        await a.send("/stats")
        await expect(a, "* lines per room: dev 1, lobby 4")
        await a.send("/help")
        assert "/stats - lines said per room since the start" in (await recv(a)).split("\n")
        await a.close()
        bridge.wait(r'\{.*"kind":"leave".*\}', count=2)

    run(go())
    # Commands and their answers are not events; the second watcher did not
    # disturb the first.
    kinds = [e["kind"] for e in events(bridge)]
    assert kinds == ["join"] + ["message"] * 3 + ["action", "leave", "join", "message", "leave"], kinds
    bridge.assert_clean_exit()


# ---------------------------------------------------------------- auth

def test_auth_token_in_the_query(start):
    auth = start("auth", 0)

    async def go():
        a = await connect(auth.url + "?token=alice-secret")
        await expect(a, WELCOME % ("alice", "lobby"))
        b = await connect(auth.url + "chat?room=x&token=bob-secret&name=mallory")
        await expect(b, WELCOME % ("bob", "x"))  # the token's name wins over ?name=
        await a.send("hi")
        await expect(a, "[lobby] alice: hi")
        await a.close()
        await b.close()

    run(go())
    auth.assert_clean_exit()


def test_auth_token_in_a_subprotocol(start):
    """A browser cannot set headers: the token rides in
    Sec-WebSocket-Protocol, and the answer names the other protocol."""
    auth = start("auth", 0)

    async def go():
        b = await connect(auth.url, subprotocols=["wschat", "token.bob-secret"])
        assert b.subprotocol == "wschat"
        await expect(b, WELCOME % ("bob", "lobby"))
        await b.close()
        a = await connect(auth.url, subprotocols=["token.alice-secret"])
        assert a.subprotocol is None  # nothing else offered: no protocol chosen
        await expect(a, WELCOME % ("alice", "lobby"))
        await a.close()

    run(go())
    auth.assert_clean_exit()


def test_auth_token_in_an_authorization_header(start):
    auth = start("auth", 0)

    async def go():
        a = await connect(auth.url, extra_headers={"Authorization": "Bearer alice-secret"})
        await expect(a, WELCOME % ("alice", "lobby"))
        await a.close()

    run(go())
    auth.assert_clean_exit()


def test_auth_bad_token_is_401_with_www_authenticate(start):
    auth = start("auth", 0)
    for target, headers in (("/?token=wrong", ""), ("/", "Authorization: Bearer wrong\r\n"),
                            ("/", "Sec-WebSocket-Protocol: wschat, token.wrong\r\n")):
        s = raw_upgrade(auth.port, target, headers)
        try:
            status, hdrs, body = read_response(s)
        finally:
            s.close()
        assert status == 401, (target, headers, status)
        assert hdrs.get("www-authenticate") == 'Bearer error="invalid_token"', hdrs
        assert body == b"bad token\n"

    async def go():  # as a websockets client sees it
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await connect(auth.url + "?token=wrong")
        assert e.value.status_code == 401
        assert e.value.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        # The server carries on: a good token still works.
        a = await connect(auth.url + "?token=alice-secret")
        await expect(a, WELCOME % ("alice", "lobby"))
        await a.close()

    run(go())
    auth.assert_clean_exit()


def test_auth_no_token_is_401_at_once(start):
    auth = start("auth", 0)
    t0 = time.monotonic()
    s = raw_upgrade(auth.port, "/?name=alice")
    try:
        status, hdrs, body = read_response(s)
    finally:
        s.close()
    assert (status, hdrs.get("www-authenticate"), body) == (401, "Bearer", b"token required\n")
    assert time.monotonic() - t0 < 1.0  # no check, no wait
    auth.assert_clean_exit()


def test_auth_name_in_use_is_409(start):
    auth = start("auth", 0)

    async def go():
        a = await connect(auth.url + "?token=alice-secret")
        await expect(a, WELCOME % ("alice", "lobby"))
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await connect(auth.url + "?token=alice-secret")
        assert e.value.status_code == 409
        await quiet(a)  # a refused client never joined
        await a.close()

    run(go())
    auth.assert_clean_exit()


def test_auth_slow_check_blocks_nobody(start):
    """A check that takes 2 s: meanwhile the loop serves everyone else,
    then the slow client is accepted and the room hears of it."""
    auth = start("auth", 0)

    async def go():
        t0 = time.monotonic()
        slow = asyncio.ensure_future(connect(auth.url + "?token=slow-secret", open_timeout=8))
        await asyncio.sleep(0.1)
        a = await connect(auth.url + "?token=alice-secret")
        await expect(a, WELCOME % ("alice", "lobby"))
        await a.send("still here")
        await expect(a, "[lobby] alice: still here")
        assert not slow.done()
        assert time.monotonic() - t0 < 1.5
        s = await asyncio.wait_for(slow, 8)
        assert time.monotonic() - t0 >= 1.9
        await expect(s, WELCOME % ("sloth", "lobby"))
        await expect(a, "* sloth joined #lobby")
        await s.close()
        await a.close()

    run(go())
    auth.assert_clean_exit()


def test_auth_client_hangs_up_while_waiting(start):
    """Clients hang up while their check runs (the library stops reading
    while deferred, so the verdict may find them there, or gone): either
    way the server carries on, and the slow check's thread, still asleep
    at SIGTERM, is waited for."""
    auth = start("auth", 0)
    s = raw_upgrade(auth.port, "/?token=alice-secret")
    s.close()
    s = raw_upgrade(auth.port, "/?token=slow-secret")
    s.close()
    time.sleep(0.5)  # alice's verdict has come by now

    async def go():
        b = await connect(auth.url + "?token=bob-secret")
        await expect(b, WELCOME % ("bob", "lobby"))
        await b.close()

    run(go())
    auth.assert_clean_exit()  # also waits for the slow thread: its post fails


def test_auth_shutdown_answers_a_waiting_client_503(start):
    auth = start("auth", 0)
    s = raw_upgrade(auth.port, "/?token=slow-secret")
    try:
        time.sleep(0.2)
        auth.proc.send_signal(signal.SIGTERM)
        status, _, _ = read_response(s)
    finally:
        s.close()
    assert status == 503
    auth.assert_clean_exit(signalled=True)  # after the slow thread's post failed


# ---------------------------------------------------------------- history_mem

JSON = ["wschat.v1.json"]
FIRST_ID = 1000000  # where history_mem's id counter starts


async def jrecv(ws):
    return json.loads(await recv(ws))


def brief(messages):
    """(type, id, who, text) of each history message; each must be marked."""
    assert all(m.get("history") is True for m in messages), messages
    return [(m["type"], m["id"], m.get("from", m.get("name")), m.get("text")) for m in messages]


def test_history_mem_replays_its_store_to_a_text_joiner(start):
    """A joiner gets the room's events from the program's store as
    "[history] " + the live line, oldest first, then live traffic. A
    whisper is never stored (it takes an id all the same). /recap reads the
    store through wschat_server_read_history(): the ids are the store's."""
    hm = start("history_mem", 0)

    async def go():
        a = await connect(hm.url + "?name=alice")
        await expect(a, WELCOME % ("alice", "lobby"))
        await quiet(a)  # an empty room: nothing to replay, nothing missing
        await a.send("one")
        await expect(a, "[lobby] alice: one")
        await a.send("/me waves")
        await expect(a, "* alice waves")
        b = await connect(hm.url + "?name=bob")
        await expect(b, WELCOME % ("bob", "lobby"),
                     "[history] * alice joined #lobby",
                     "[history] [lobby] alice: one",
                     "[history] * alice waves")
        await expect(a, "* bob joined #lobby")
        await quiet(b)
        await a.send("/whisper bob psst")
        await expect(b, "[whisper from alice] psst")
        await expect(a, "[whisper to bob] psst")
        await b.send("/nick robert")
        await expect(b, "* bob is now known as robert")
        await expect(a, "* bob is now known as robert")
        c = await connect(hm.url + "?name=carol")
        await expect(c, WELCOME % ("carol", "lobby"),
                     "[history] * alice joined #lobby",
                     "[history] [lobby] alice: one",
                     "[history] * alice waves",
                     "[history] * bob joined #lobby",
                     "[history] * bob is now known as robert")
        await quiet(c)  # no whisper, nothing missing
        for ws in (a, b):
            await expect(ws, "* carol joined #lobby")
        await c.send("/recap")  # default: the last 5
        await expect(c, "* recap of #lobby: 5 of the last 5"
                        "\n%d alice: one\n%d * alice waves\n%d bob joined"
                        "\n%d bob is now robert\n%d carol joined"
                     % (FIRST_ID + 1, FIRST_ID + 2, FIRST_ID + 3, FIRST_ID + 5, FIRST_ID + 6))
        await c.send("/recap 50")
        got = await recv(c)
        assert got.split("\n")[:2] == ["* recap of #lobby: 6 of the last 50",
                                       "%d alice joined" % FIRST_ID], got
        for bad in ("/recap 0", "/recap 51", "/recap x", "/recap 12345678"):
            await c.send(bad)
            await expect(c, "! usage: /recap [N] (1-50 events of your room)")
        await c.send("/help")
        assert "/recap [N] - the last N events of your room (default 5)" in (await recv(c)).split("\n")
        await quiet(a)  # /recap answers the caller only
        for ws in (a, b, c):
            await ws.close()

    run(go())
    hm.assert_clean_exit()


def test_history_mem_json_history_and_recovery(start):
    """A JSON client: the welcome carries the store's epoch; the history
    object, history requests (limit, before) and recovery with
    ?since=&epoch= are answered from the program's store with its ids; an
    epoch of another store is never complete."""
    hm = start("history_mem", 0)

    async def go():
        a = await connect(hm.url + "?name=alice")
        await expect(a, WELCOME % ("alice", "lobby"))
        for line in ("one", "two"):
            await a.send(line)
            await expect(a, "[lobby] alice: " + line)
        j = await connect(hm.url + "?name=jay", subprotocols=JSON)
        assert j.subprotocol == JSON[0]
        welcome = await jrecv(j)
        assert welcome["type"] == "welcome", welcome
        epoch = welcome["epoch"]
        assert re.fullmatch(r"[0-9a-f]{16}", epoch) and int(epoch, 16) != 0, welcome
        h = await jrecv(j)
        assert (h["type"], h["room"], h["complete"]) == ("history", "lobby", True), h
        assert brief(h["messages"]) == [("join", FIRST_ID, "alice", None),
                                        ("message", FIRST_ID + 1, "alice", "one"),
                                        ("message", FIRST_ID + 2, "alice", "two")]
        own = await jrecv(j)
        assert (own["type"], own["id"], own["name"]) == ("join", FIRST_ID + 3, "jay"), own
        assert "history" not in own
        await expect(a, "* jay joined #lobby")

        await j.send(json.dumps({"type": "history", "room": "lobby", "limit": 2, "ref": "last"}))
        h = await jrecv(j)
        assert (h["type"], h["complete"], h["ref"]) == ("history", True, "last"), h
        assert [m["id"] for m in h["messages"]] == [FIRST_ID + 2, FIRST_ID + 3]
        await j.send(json.dumps({"type": "history", "room": "lobby", "limit": 5,
                                 "before": FIRST_ID + 2, "ref": 7}))
        h = await jrecv(j)
        assert (h["complete"], h["ref"]) == (True, 7), h  # the room's beginning: all there
        assert brief(h["messages"]) == [("join", FIRST_ID, "alice", None),
                                        ("message", FIRST_ID + 1, "alice", "one")]
        await j.close()
        await expect(a, "* jay left #lobby")  # FIRST_ID + 4
        await a.send("three")  # FIRST_ID + 5
        await expect(a, "[lobby] alice: three")

        # Recovery: everything after the last id jay saw, with jay's epoch.
        j = await connect(hm.url + "?name=jay&since=%d&epoch=%s" % (FIRST_ID + 3, epoch),
                          subprotocols=JSON)
        assert (await jrecv(j))["epoch"] == epoch
        h = await jrecv(j)
        assert h["complete"] is True, h
        assert brief(h["messages"]) == [("leave", FIRST_ID + 4, "jay", None),
                                        ("message", FIRST_ID + 5, "alice", "three")]
        assert (await jrecv(j))["id"] == FIRST_ID + 6  # its own join, then live
        await j.close()
        await expect(a, "* jay joined #lobby", "* jay left #lobby")  # +6, +7

        # An epoch that is not this store's: the ids mean nothing here.
        other = "%016x" % (int(epoch, 16) ^ 1)
        j = await connect(hm.url + "?name=jay&since=%d&epoch=%s" % (FIRST_ID + 3, other),
                          subprotocols=JSON)
        await jrecv(j)
        h = await jrecv(j)
        assert h["complete"] is False, h
        assert [m["id"] for m in h["messages"]] == list(range(FIRST_ID, FIRST_ID + 8)), h
        await j.close()
        await a.close()

    run(go())
    hm.assert_clean_exit()


def test_history_mem_says_what_its_ring_dropped(start):
    """KEEP 3: the store holds the last 3 events of a room. Reads that reach
    an event it dropped say so (JSON complete false, the text protocol's
    "! some history ... is missing", /recap's "some are missing"); a
    recovery from the newest dropped id on is complete."""
    hm = start("history_mem", 0, 3)

    async def go():
        a = await connect(hm.url + "?name=alice")  # FIRST_ID
        await expect(a, WELCOME % ("alice", "lobby"))
        for line in ("l1", "l2", "l3"):  # +1 .. +3; FIRST_ID is dropped
            await a.send(line)
            await expect(a, "[lobby] alice: " + line)
        j = await connect(hm.url + "?name=jay&since=%d" % FIRST_ID, subprotocols=JSON)
        await jrecv(j)
        h = await jrecv(j)
        assert h["complete"] is True, h  # nothing after FIRST_ID is missing
        assert [m["id"] for m in h["messages"]] == [FIRST_ID + 1, FIRST_ID + 2, FIRST_ID + 3]
        await jrecv(j)  # its join: +4 (+1 dropped)
        await j.close()
        await expect(a, "* jay joined #lobby", "* jay left #lobby")  # +5 (+2 dropped)

        b = await connect(hm.url + "?name=bob")
        await expect(b, WELCOME % ("bob", "lobby"),
                     "[history] [lobby] alice: l3",
                     "[history] * jay joined #lobby",
                     "[history] * jay left #lobby",
                     "! some history of #lobby is missing")
        await expect(a, "* bob joined #lobby")  # +6 (+3 dropped)

        j = await connect(hm.url + "?name=jay&since=%d" % (FIRST_ID + 1), subprotocols=JSON)
        await jrecv(j)
        h = await jrecv(j)
        assert h["complete"] is False, h  # +2 and +3 are gone
        assert [m["id"] for m in h["messages"]] == [FIRST_ID + 4, FIRST_ID + 5, FIRST_ID + 6]
        await jrecv(j)  # its join: +7 (+4 dropped)
        k = await connect(hm.url + "?name=kay&since=%d" % (FIRST_ID + 4), subprotocols=JSON)
        await jrecv(k)
        h = await jrecv(k)
        assert h["complete"] is True, h  # the newest dropped id is where kay stands
        assert [m["id"] for m in h["messages"]] == [FIRST_ID + 5, FIRST_ID + 6, FIRST_ID + 7]

        await b.send("/recap 3")
        assert (await next_matching(b, r"\* recap.*")).split("\n")[0] == \
            "* recap of #lobby: 3 of the last 3"
        await b.send("/recap 10")
        assert (await next_matching(b, r"\* recap.*")).split("\n")[0] == \
            "* recap of #lobby: 3 of the last 10 (some are missing)"
        for ws in (a, b, j, k):
            await ws.close()

    run(go())
    hm.assert_clean_exit()
