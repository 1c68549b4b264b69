"""Clients and helpers for the JSON subprotocol and history end-to-end tests
(test_json_proto.py, test_history.py).

- JsonClient is a ChatClient (chatclient.py) that speaks wschat.v1.json:
  every read is bounded, parsed, and checked to be one object with a "type"
  and no duplicate member; the raw text stays in .last_raw.
- Pool is chatclient.Clients plus JSON clients (closed the same way).
- CliProcess starts chat-cli in a chosen working directory (the default
  history file is ./wschat.db), which conftest.Server cannot.
- fetch_all() pages through a room's stored events with `history` requests.

Shapes: the member order of every server object is fixed by
docs/PROTOCOL.md 2.4; KEYS says it for each type (optional members last).
"""
import json
import subprocess
import tempfile
import time
import urllib.parse

import websockets

import memcheck
from chatclient import TIMEOUT, GUEST_RE, ChatClient, Clients
from conftest import CLI, START_RE

SUBPROTOCOL = "wschat.v1.json"
HISTORY_PREFIX = "[history] "

# Members of each server object, in the order docs/PROTOCOL.md 2.4 writes
# them; the optional ones (present only sometimes) are in OPTIONAL.
KEYS = {
    "message": ["type", "id", "room", "from", "text", "ts"],
    "join": ["type", "id", "room", "name", "ts"],
    "leave": ["type", "id", "room", "name", "ts"],
    "nick": ["type", "id", "room", "from", "to", "ts"],
    "whisper": ["type", "id", "from", "to", "text", "ts"],
    "welcome": ["type", "name", "room", "rooms", "epoch"],
    "users": ["type", "room", "users"],
    "rooms": ["type", "rooms"],
    "history": ["type", "room", "messages", "complete"],
    "typing": ["type", "room", "from"],
    "error": ["type", "code", "message"],
}
EVENT_TYPES = ("message", "join", "leave", "nick")


def _no_duplicates(pairs):
    names = [k for k, _ in pairs]
    assert len(names) == len(set(names)), "duplicate member in a server object: %r" % (names,)
    return dict(pairs)


def parse(raw):
    """One server message: a JSON object with a string "type"."""
    assert isinstance(raw, str), "expected a text message, got %r" % (raw,)
    obj = json.loads(raw, object_pairs_hook=_no_duplicates)
    assert isinstance(obj, dict) and isinstance(obj.get("type"), str), "not a typed object: %r" % (raw,)
    return obj


def check_ts(ts):
    now = time.time() * 1000
    assert isinstance(ts, int) and not isinstance(ts, bool), "ts %r is not an integer" % (ts,)
    assert abs(ts - now) < 60_000, "ts %r is not ms since the Unix epoch (now %d)" % (ts, now)


def check_event(obj, type_=None, history=False, **members):
    """obj is an event object of type_ with exactly the members of KEYS in
    that order, plus the optional "action" (message) or "reason" (leave)
    when members gives it or, if members does not say, when obj has it,
    plus "history": true last when history; an integer id and a sane ts;
    each of members has that value."""
    t = type_ or obj["type"]
    assert obj["type"] == t, "expected a %s event, got %r" % (t, obj)
    keys = list(KEYS[t])
    if t == "message" and members.get("action", "action" in obj):
        keys.append("action")
        assert obj.get("action") is True, obj
    if t == "leave" and members.get("reason", obj.get("reason")) is not None:
        keys.append("reason")
        assert isinstance(obj.get("reason"), str), obj
    if history:
        keys.append("history")
    assert list(obj) == keys, "%s event members %r, expected %r (in that order)" % (t, list(obj), keys)
    assert isinstance(obj["id"], int) and obj["id"] >= 1, obj
    check_ts(obj["ts"])
    if history:
        assert obj["history"] is True, obj
    for k, v in members.items():
        if k == "action" and not v:
            assert "action" not in obj, obj
            continue
        assert obj.get(k) == v, "%s: %r, expected %r in %r" % (k, obj.get(k), v, obj)
    return obj


def live_of(hobj):
    """A history entry without its "history": true (what was sent live)."""
    d = dict(hobj)
    assert d.pop("history", None) is True, "history entry without \"history\": true: %r" % (hobj,)
    return d


def as_text_line(ev):
    """The plain-text protocol's line for a JSON event (docs/PROTOCOL.md 1.1)."""
    t = ev["type"]
    if t == "message":
        if ev.get("action"):
            return "* %s %s" % (ev["from"], ev["text"])
        return "[%s] %s: %s" % (ev["room"], ev["from"], ev["text"])
    if t == "join":
        return "* %s joined #%s" % (ev["name"], ev["room"])
    if t == "leave":
        if ev.get("reason") is not None:
            return "* %s left #%s (%s)" % (ev["name"], ev["room"], ev["reason"])
        return "* %s left #%s" % (ev["name"], ev["room"])
    if t == "nick":
        return "* %s is now known as %s" % (ev["from"], ev["to"])
    raise AssertionError("no text line for %r" % (ev,))


class JsonClient(ChatClient):
    """A websockets connection that negotiated wschat.v1.json."""

    last_raw = None

    async def send(self, data):
        """dict: sent as compact JSON; str: sent as it is; bytes: a binary message."""
        if isinstance(data, dict):
            data = json.dumps(data, separators=(",", ":"))
        await self.ws.send(data)

    async def recv_obj(self, timeout=TIMEOUT):
        raw = await self.recv(timeout)
        self.last_raw = raw
        return parse(raw)

    async def expect_obj(self, type_, timeout=TIMEOUT):
        obj = await self.recv_obj(timeout)
        assert obj["type"] == type_, "%s: expected a %s object, got %r" % (self.name, type_, obj)
        return obj

    async def expect_error(self, code, ref=None, has_ref=None):
        """The next object is an error with this code; its ref is ref (absent
        when ref is None, unless has_ref says otherwise)."""
        obj = await self.recv_obj()
        assert obj["type"] == "error", "%s: expected error %s, got %r" % (self.name, code, obj)
        keys = list(KEYS["error"])
        if ref is not None or has_ref:
            keys.append("ref")
        assert list(obj) == keys, "error members %r, expected %r" % (list(obj), keys)
        assert obj["code"] == code, "%s: expected error code %r, got %r" % (self.name, code, obj)
        assert isinstance(obj["message"], str) and obj["message"], obj
        if ref is not None:
            assert obj["ref"] == ref and type(obj["ref"]) is type(ref), "ref %r, expected %r" % (obj["ref"], ref)
        return obj

    async def expect_history(self, room, complete=True, ref=None):
        """The next object is a history object of room; returns its messages
        (each checked as an event with "history": true)."""
        obj = await self.expect_obj("history")
        keys = list(KEYS["history"]) + (["ref"] if ref is not None else [])
        assert list(obj) == keys, "history members %r, expected %r" % (list(obj), keys)
        assert obj["room"] == room, obj
        assert obj["complete"] is complete, "complete is %r, expected %r: %s" % (obj["complete"], complete, self.last_raw[:500])
        if ref is not None:
            assert obj["ref"] == ref, obj
        for m in obj["messages"]:
            assert m["type"] in EVENT_TYPES, "a %s in history: %r" % (m["type"], m)
            check_event(m, history=True)
        ids = [m["id"] for m in obj["messages"]]
        assert ids == sorted(set(ids)), "history ids not strictly increasing: %r" % (ids,)
        return obj["messages"]

    async def join_room(self, room, history=True, **extra):
        """Sends join; expects (with history) a history object of room and
        then this client's own join event. Returns (messages, join event);
        messages is None without history."""
        req = {"type": "join", "room": room}
        req.update(extra)
        await self.send(req)
        msgs = await self.expect_history(room) if history else None
        ev = check_event(await self.recv_obj(), "join", room=room, name=self.name)
        self.room = room
        return msgs, ev


def json_url(server, name=None, room=None, since=None, epoch=None):
    query = {}
    for k, v in (("name", name), ("room", room), ("since", since), ("epoch", epoch)):
        if v is not None:
            query[k] = str(v)
    return server.url + ("?" + urllib.parse.urlencode(query) if query else "")


async def open_json_ws(url, subprotocols=(SUBPROTOCOL,), **kw):
    return await websockets.connect(url, subprotocols=list(subprotocols) if subprotocols else None,
                                    max_size=None, max_queue=None, ping_interval=None,
                                    open_timeout=TIMEOUT, close_timeout=1, **kw)


class Pool(Clients):
    """chatclient.Clients plus JSON clients; all closed on exit."""

    async def jopen(self, name=None, room=None, since=None, epoch=None):
        """A JSON client that has read nothing yet (subprotocol checked)."""
        ws = await open_json_ws(json_url(self.server, name, room, since, epoch))
        assert ws.subprotocol == SUBPROTOCOL, "subprotocol %r negotiated" % (ws.subprotocol,)
        c = JsonClient(ws, name, room)
        self.all.append(c)
        return c

    async def jjoin(self, name=None, room=None, history=True, since=None, epoch=None, complete=True):
        """A JSON client whose welcome (the name and room asked for), history
        object (when history) and own join event were checked. Sets
        c.welcome, c.history (list or None), c.join_ev."""
        c = await self.jopen(name, room, since, epoch)
        w = await c.expect_obj("welcome")
        assert list(w) == KEYS["welcome"], "welcome members %r" % (list(w),)
        want_room = room or "lobby"
        if name is None:
            assert GUEST_RE.match(w["name"]), w
        else:
            assert w["name"] == name, w
        assert w["room"] == want_room and w["rooms"] == [want_room], w
        c.name, c.room, c.welcome = w["name"], want_room, w
        c.history = await c.expect_history(want_room, complete=complete) if history else None
        c.join_ev = check_event(await c.recv_obj(), "join", room=want_room, name=c.name)
        return c

    async def tjoin(self, name, room=None, history=()):
        """A text client whose welcome line and then exactly the history
        lines given (without their prefix) were checked."""
        c = await self.join(name, room)
        if history:
            await c.expect(*[HISTORY_PREFIX + l for l in history])
        return c


async def fetch_all(client, room, page=500, require_complete=True):
    """Every stored event of room, oldest first, by `history` requests
    paged with `before` (client must be a JSON member of room). Each page
    must say complete unless require_complete is false (after a crash the
    store may not know whether rows are missing)."""
    out = []
    before = None
    n = 0
    while True:
        req = {"type": "history", "room": room, "limit": page, "ref": "page%d" % n}
        if before is not None:
            req["before"] = before
        await client.send(req)
        while True:  # skip live traffic that arrives meanwhile
            obj = await client.recv_obj()
            if obj["type"] == "history" and obj.get("ref") == "page%d" % n:
                break
        assert obj["complete"] is True or (obj["complete"] is False and not require_complete), \
            "history page %d: complete is %r: %r" % (n, obj["complete"], client.last_raw[:300])
        msgs = obj["messages"]
        out[:0] = msgs
        if len(msgs) < page:
            return out
        before = msgs[0]["id"]
        n += 1


class CliProcess:
    """chat-cli started with exactly args (no flag added) in cwd; the same
    interface as conftest.Server for what these tests use."""

    def __init__(self, args, cwd):
        self._stderr = tempfile.TemporaryFile(mode="w+")
        argv, self.valgrind_log = memcheck.wrap([CLI, "--host", "127.0.0.1", "--port", "0"] + list(args))
        self.proc = subprocess.Popen(argv, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1)
        line = self._readline(10 * memcheck.SCALE)
        m = START_RE.match(line.strip())
        if not m:
            self.stop()
            raise RuntimeError("unexpected start line from chat-cli: %r" % (line,))
        self.host = m.group("host").strip("[]")
        self.port = int(m.group("port"))
        self.url = "ws://%s:%d/" % (self.host, self.port)

    def _readline(self, timeout):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if sel.select(timeout=timeout):
                return self.proc.stdout.readline()
        finally:
            sel.close()
        return ""

    def alive(self):
        return self.proc.poll() is None

    def stderr_text(self):
        self._stderr.seek(0)
        return self._stderr.read() + memcheck.report(self.valgrind_log)

    def terminate(self, sig=15, timeout=10):
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout * memcheck.SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return None

    def stop(self):
        self.terminate()
        self.proc.stdout.close()
        bad = self.proc.returncode == memcheck.ERROR_EXIT and self.valgrind_log
        text = self.stderr_text() if bad else ""
        self._stderr.close()
        memcheck.forget(self.valgrind_log)
        self.valgrind_log = None
        assert not bad, "valgrind: %s" % text[-6000:]
