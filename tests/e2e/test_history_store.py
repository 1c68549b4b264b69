"""A history store of the application's (wschat_server_set_history_store())
behind the chat: tests/store_probe.c keeps events in memory and answers
each read either from inside its read() ("now", which the API allows) or
later from a posted callback ("later").

The binary comes from $WSCHAT_STORE_PROBE (meson sets it). Every wait is
bounded; the probe is stopped with SIGTERM and must exit 0 (its server
freed, its loop closed).
"""
import asyncio
import json
import os
import re
import signal
import subprocess
import tempfile

import websockets

from wsutil import recv, run_bounded

PROBE = os.environ.get("WSCHAT_STORE_PROBE",
                       os.path.join(os.path.dirname(__file__), "..", "..", "build", "tests", "store_probe"))
JSON = ["wschat.v1.json"]


class Probe:
    def __init__(self, mode):
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([PROBE, mode, "0"], stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"^listening on ws://127\.0\.0\.1:(\d+)/$", line.strip())
        if not m:
            self.stop()
            raise RuntimeError("store_probe did not start: %r %s" % (line, self.stderr_text()))
        self.url = "ws://127.0.0.1:%s/" % m.group(1)

    def stderr_text(self):
        self._stderr.seek(0)
        return self._stderr.read()

    def stop(self):
        """SIGTERM, then the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                return None
        return self.proc.returncode


async def until(ws, kind, **match):
    while True:
        m = json.loads(await recv(ws))
        if m["type"] == kind and all(m.get(k) == v for k, v in match.items()):
            return m


def texts(history):
    return [m["text"] for m in history["messages"] if m["type"] == "message"]


def replay_history_request_and_recovery(probe):
    """Joins, history requests and recovery all go through the store's
    read, and come back in order: the history, then the join, with no
    event twice."""
    async def go():
        async with websockets.connect(probe.url + "?name=alice&room=dev", subprotocols=JSON) as a:
            await until(a, "join", name="alice")
            for i in range(3):
                await a.send(json.dumps({"type": "message", "text": "m%d" % i}))
                await until(a, "message", text="m%d" % i)
            await a.send(json.dumps({"type": "history", "room": "dev", "limit": 10, "ref": "h"}))
            h = await until(a, "history", ref="h")
            assert texts(h) == ["m0", "m1", "m2"]
            # a second room: the join's replay, then the join
            await a.send(json.dumps({"type": "join", "room": "ops"}))
            h = await until(a, "history", room="ops")
            assert h["messages"] == [] and h["complete"] is True
            await until(a, "join", room="ops", name="alice")
        # a joiner of dev gets its history, then its join
        async with websockets.connect(probe.url + "?name=bob&room=dev", subprotocols=JSON) as b:
            welcome = json.loads(await recv(b))
            assert welcome["type"] == "welcome"
            h = json.loads(await recv(b))
            assert h["type"] == "history" and texts(h) == ["m0", "m1", "m2"]
            j = json.loads(await recv(b))
            assert j["type"] == "join" and j["name"] == "bob"
            # recovery after the second message
            since = [m["id"] for m in h["messages"] if m.get("text") == "m1"][0]
        async with websockets.connect(probe.url + "?name=carol&room=dev&since=%d&epoch=%s"
                                      % (since, welcome["epoch"]), subprotocols=JSON) as c:
            await until(c, "welcome")
            h = json.loads(await recv(c))
            assert h["type"] == "history" and h["complete"] is True
            assert texts(h) == ["m2"]
            ids = [m["id"] for m in h["messages"]]
            assert ids == sorted(set(ids)) and ids[0] > since
        # text clients: the replay and /history
        async with websockets.connect(probe.url + "?name=dave&room=dev") as d:
            await d.send("/history 2")
            got = []
            while len(got) < 2 or not got[-1].startswith("[history]"):
                got.append(await recv(d))
    run_bounded(go(), 20)
    assert probe.stop() == 0, probe.stderr_text()


def test_store_answering_inside_read():
    """Regression: the replay read was linked to its client after the
    store's read() returned, so a store answering from inside read() left
    a freed read on the client's list (heap use after free at the first
    join, then again when the client closed)."""
    p = Probe("now")
    try:
        replay_history_request_and_recovery(p)
    finally:
        p.stop()


def test_store_answering_later_sees_no_duplicate():
    """Regression: a store answering from a later loop turn saw the
    joiner's own join (appended after the read was asked for) and the
    joiner got it twice: in its replay and live. A JOIN replay now leaves
    out events newer than the read."""
    p = Probe("later")
    try:
        replay_history_request_and_recovery(p)
    finally:
        p.stop()


def test_application_send_waits_behind_the_replay():
    """Regression: wschat_client_send() went straight to the connection,
    so an application greeting a joiner from on_join overtook the replay
    still being read: welcome, greeting, history, join. It now waits
    behind the replay like every other delivery."""
    p = Probe("later")
    try:
        async def go():
            async with websockets.connect(p.url + "?name=erin&room=dev", subprotocols=JSON) as e:
                got = [json.loads(await recv(e))["type"] for _ in range(4)]
                assert got == ["welcome", "history", "join", "greeting"], got
                await e.send(json.dumps({"type": "join", "room": "ops"}))
                got = [json.loads(await recv(e)) for _ in range(3)]
                assert [(m["type"], m["room"]) for m in got] == [
                    ("history", "ops"), ("join", "ops"), ("greeting", "ops")], got
        run_bounded(go(), 10)
        assert p.stop() == 0, p.stderr_text()
    finally:
        p.stop()


def test_store_that_never_answers_is_ended_at_shutdown():
    """A store that never ends its replies: the joiner waits (its live
    traffic is held behind the replay), and at shutdown the server ends
    the replies itself. The exit is clean (under ASan: nothing leaked)."""
    p = Probe("never")
    try:
        async def body():
            ws = await websockets.connect(p.url + "?name=ann", subprotocols=["wschat.v1.json"])
            w = json.loads(await recv(ws))
            assert w["type"] == "welcome", w
            await ws.send(json.dumps({"type": "history", "room": "lobby", "limit": 5}))
            try:
                m = await asyncio.wait_for(ws.recv(), 0.5)
                raise AssertionError("nothing may pass the unanswered replay: %r" % (m,))
            except asyncio.TimeoutError:
                pass
            await ws.close()
        asyncio.run(asyncio.wait_for(body(), 20))
    finally:
        assert p.stop() == 0, p.stderr_text()
