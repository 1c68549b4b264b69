"""The chat page chat-cli serves on GET / (web/), in a real headless
Chromium driven over the DevTools protocol (cdp.py), against a real
chat-cli with a history file:

- the HTTP answers: types, Content-Security-Policy, ETag and 304, HEAD;
- two people (two pages, each in a browser context of its own) pick
  names with the keyboard and chat: lines, /me, a whisper, typing;
- one joins a second room and gets an unread count in the first;
- one reloads and sees the room's history, marked earlier;
- chat-cli restarts (SIGTERM, the same port and history file); while the
  pages wait to reconnect, a Python client says things in both rooms;
  both pages reconnect and recover them through `since`, each exactly
  once, and nothing said before appears twice;
- `<img src=x onerror=alert(1)>` is shown as those characters, and no
  dialog opens; an inline script is refused by the page's CSP;
- the page fits a phone-sized screen and follows prefers-color-scheme;
- chat-cli restarts with a new history file (a new epoch): the pages say
  that what they missed cannot be recovered and reload the history.

It saves a screenshot of the conversation as web-screenshot.png in the
build directory (docs/screenshot.png is a copy of one).
"""
import asyncio
import json
import os
import re
import socket
import tempfile
import time

import pytest
import websockets

from browser import CHROMIUM
from cdp import Chromium
from conftest import Server

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (./dev test installs it)")

XSS = "<img src=x onerror=alert(1)>"
TIMEOUT = 15


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, headers=""):
    """One plain HTTP/1.1 request; returns (status, {lower-case name: value}, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (method, path, port, headers)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), hdrs, body


# ---- the HTTP side ----

def test_http_answers(start_server):
    s = start_server()
    port = s.port
    web = os.path.join(os.path.dirname(__file__), "..", "..", "web")
    for path, ctype, name in [("/", "text/html; charset=utf-8", "index.html"),
                              ("/index.html", "text/html; charset=utf-8", "index.html"),
                              ("/app.js", "text/javascript; charset=utf-8", "app.js"),
                              ("/style.css", "text/css; charset=utf-8", "style.css")]:
        status, h, body = http(port, "GET", path)
        assert status == 200, (path, status)
        assert h["content-type"] == ctype
        assert body == open(os.path.join(web, name), "rb").read(), "%s is not web/%s" % (path, name)
        assert int(h["content-length"]) == len(body)
        assert h["x-content-type-options"] == "nosniff"
        assert h["cache-control"] == "no-cache"
        csp = h["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "connect-src 'self' ws://127.0.0.1:%d wss://127.0.0.1:%d" % (port, port) in csp
        assert "unsafe" not in csp
        etag = h["etag"]
        assert re.fullmatch(r'"[0-9a-f]{20}"', etag)
        # The browser's copy is still good: 304, no body.
        status, h304, body = http(port, "GET", path, "If-None-Match: %s\r\n" % etag)
        assert (status, body, h304["etag"]) == (304, b"", etag)
        assert "content-length" not in h304
        status, _, body = http(port, "GET", path, 'If-None-Match: "other", W/%s\r\n' % etag)
        assert (status, body) == (304, b"")
        status, _, body = http(port, "GET", path, 'If-None-Match: "other"\r\n')
        assert status == 200 and body
        # HEAD: the same head, no body.
        status, hh, body = http(port, "HEAD", path)
        assert (status, body, hh["content-length"], hh["etag"]) == (200, b"", h["content-length"], etag)
    assert http(port, "GET", "/healthz")[::2] == (200, b"ok\n")
    assert http(port, "GET", "/nothing.js")[0] == 404
    assert http(port, "POST", "/", "Content-Length: 0\r\n")[0] == 405


def test_echo_server_has_no_page(start_server):
    s = start_server("--echo")
    assert http(s.port, "GET", "/")[0] == 426


# ---- the page in a browser ----

LINES = """(room) => [...document.querySelectorAll('.log')]
  .filter((l) => l.getAttribute('aria-label') === 'Messages in #' + room)
  .flatMap((l) => [...l.querySelectorAll('.line')].map((e) => ({
     id: e.dataset.id || null, cls: e.className, text: (e.querySelector('.text') || {}).textContent || null,
     from: (e.querySelector('.from') || {}).textContent || null, all: e.textContent})))"""


async def lines(page, room):
    return await page.eval("(%s)(%s)" % (LINES, json.dumps(room)))


async def texts(page, room):
    return [l["text"] for l in await lines(page, room) if l["text"] is not None and "message" in l["cls"]]


async def wait_text(page, room, text, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in await texts(page, room):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("%r never appeared in #%s: %r" % (text, room, await lines(page, room)))


async def status(page):
    return await page.eval("document.getElementById('status').dataset.state + ' ' + "
                           "document.getElementById('status').textContent")


async def wait_open(page, name=None, timeout=TIMEOUT):
    want = "open connected as " + name if name else "open "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = await status(page)
        if st.startswith(want):
            return st
        await asyncio.sleep(0.05)
    raise AssertionError("page never connected (%r): %r" % (want, await status(page)))


async def say(page, text):
    """Types text into the message box and presses Enter, as a person would."""
    await page.eval("document.getElementById('input').focus()")
    await page.type(text)
    await page.press("Enter")
    assert await page.eval("document.activeElement.id") == "input", "focus left the input"
    assert await page.eval("document.getElementById('input').value") == ""


async def set_name(page, name):
    await page.eval("(() => { const i = document.getElementById('name-input'); i.value = ''; i.focus(); })()")
    await page.type(name)
    await page.press("Enter")
    await wait_open(page, name)


def no_duplicates(ls):
    ids = [l["id"] for l in ls if l["id"]]
    assert len(ids) == len(set(ids)), "an event shown twice: %r" % ls


async def run_scenario(port, db, shot):
    server = Server(["--port", str(port), "--history", db])
    try:
        async with Chromium() as browser:
            a = await browser.new_page()
            b = await browser.new_page()
            base = "http://127.0.0.1:%d/" % port

            # Two people open the page and choose names with the keyboard.
            await a.goto(base)
            await wait_open(a)
            await set_name(a, "alice")
            await b.goto(base + "#lobby")
            await wait_open(b)
            await set_name(b, "bob")
            assert await a.eval("localStorage.getItem('wschat.name')") == "alice"
            assert await a.eval("location.hash") == "#lobby"

            # They chat; bob sees alice typing before her line arrives.
            await a.eval("document.getElementById('input').focus()")
            await a.type("hello bob")
            await b.wait_for("document.getElementById('typing').textContent === 'alice is typing…'",
                             TIMEOUT, "alice is typing, on bob's page")
            await a.press("Enter")
            await wait_text(b, "lobby", "hello bob")
            assert await b.eval("document.getElementById('typing').textContent") == ""
            await say(b, "hi alice, how are you?")
            await wait_text(a, "lobby", "hi alice, how are you?")
            await say(a, "/me waves")
            await wait_text(b, "lobby", "waves")
            act = [l for l in await lines(b, "lobby") if l["text"] == "waves"][0]
            assert "action" in act["cls"] and act["all"].endswith("* alice waves"), act
            await say(b, "/w alice psst, a secret")
            await a.wait_for("[...document.querySelectorAll('.whisper')].some((e) => "
                             "e.textContent.endsWith('whisper from bob: psst, a secret'))", TIMEOUT, "the whisper")
            await b.wait_for("[...document.querySelectorAll('.whisper')].some((e) => "
                             "e.textContent.endsWith('whisper to alice: psst, a secret'))", TIMEOUT, "the whisper")
            members = await a.wait_for("(() => { const m = [...document.querySelectorAll('#members li')]"
                                       ".map((e) => e.firstChild.textContent); "
                                       "return m.length === 2 && m; })()", TIMEOUT, "two members")
            assert members == ["alice", "bob"]

            # alice joins a second room; bob's line in the first is unread there.
            await say(a, "/join dev")
            await a.wait_for("document.getElementById('room-title').textContent === '#dev'", TIMEOUT, "#dev shown")
            assert await a.eval("location.hash") == "#dev"
            await say(a, "anyone in dev?")
            await wait_text(a, "dev", "anyone in dev?")
            await say(b, "alice went to dev")
            await say(b, "still here?")
            badge = await a.wait_for("(() => { const b = [...document.querySelectorAll('#rooms .room')]"
                                     ".find((e) => e.textContent.startsWith('#lobby')); "
                                     "return b && b.querySelector('.badge').textContent === '2' && "
                                     "b.getAttribute('aria-label'); })()", TIMEOUT, "2 unread in #lobby")
            assert badge == "#lobby, 2 unread"
            assert await a.eval("document.title") == "(2) wschat"
            await say(b, "/join dev")
            await b.wait_for("document.getElementById('room-title').textContent === '#dev'", TIMEOUT, "bob in #dev")
            await say(b, "found you")
            await wait_text(a, "dev", "found you")
            await say(a, "welcome to dev, bob")
            await wait_text(b, "dev", "welcome to dev, bob")
            await say(b, "/me brings coffee")
            await wait_text(a, "dev", "brings coffee")
            await say(a, "/whisper bob thanks, you are a star")
            await a.wait_for("!!document.querySelector('.log:not([hidden]) .whisper')", TIMEOUT, "the whisper")
            await asyncio.sleep(3.1)  # a page says "typing" at most every 3 s per room
            await b.type("typing something")
            await a.wait_for("document.getElementById('typing').textContent === 'bob is typing…'",
                             TIMEOUT, "bob is typing, on alice's page")
            await a.screenshot(shot)  # mid-conversation
            await b.eval("document.getElementById('input').value = ''")

            # bob reloads: the same name (this tab's), both rooms, their
            # history marked earlier.
            await b.reload()
            await wait_open(b, "bob")
            await wait_text(b, "lobby", "hello bob")
            await wait_text(b, "dev", "welcome to dev, bob")
            early = [l for l in await lines(b, "lobby") if l["text"] == "hello bob"][0]
            assert "earlier" in early["cls"] and "earlier" in early["all"], early
            assert await b.eval("document.querySelector('.divider.earlier-top').textContent") == "Earlier messages"
            assert await b.eval("document.getElementById('room-title').textContent") == "#dev"
            for p in (a, b):
                for room in ("lobby", "dev"):
                    no_duplicates(await lines(p, room))

            # The server restarts on the same port and file. While the pages
            # wait to reconnect, carol says things in both rooms.
            before = {(id(p), r): await texts(p, r) for p in (a, b) for r in ("lobby", "dev")}
            assert server.terminate() == 0
            for p in (a, b):
                await p.wait_for("document.getElementById('status').dataset.state === 'closed'", TIMEOUT,
                                 "the page to notice the server is gone")
            # Wait until both have backed off to a retry at least 2 s away
            # (the backoff grows: 0.5, 1, 2, 4, 8 s, each +-25%).
            left = "(+document.getElementById('status').dataset.retryAt || 0) - Date.now()"
            deadline = time.monotonic() + 40
            while min([await a.eval(left), await b.eval(left)]) < 2000:
                assert time.monotonic() < deadline, "the pages never backed off"
                await asyncio.sleep(0.1)
            server = Server(["--port", str(port), "--history", db])
            carol = await websockets.connect("ws://127.0.0.1:%d/?name=carol" % port,
                                             subprotocols=["wschat.v1.json"])
            await carol.send(json.dumps({"type": "message", "text": "missed in lobby 1"}))
            await carol.send(json.dumps({"type": "message", "text": "missed in lobby 2"}))
            await carol.send(json.dumps({"type": "join", "room": "dev"}))
            await carol.send(json.dumps({"type": "message", "room": "dev", "text": "missed in dev"}))
            await carol.send(json.dumps({"type": "users", "ref": "done"}))
            while json.loads(await asyncio.wait_for(carol.recv(), 5)).get("ref") != "done":
                pass
            for p in (a, b):  # they were away while carol spoke
                st = await status(p)
                assert st.startswith("closed"), "a page reconnected too soon for this test: %r" % st
            await wait_open(a, "alice", 30)
            await wait_open(b, "bob", 30)
            for p in (a, b):
                await wait_text(p, "lobby", "missed in lobby 2")
                await wait_text(p, "dev", "missed in dev")
                for room in ("lobby", "dev"):
                    ls = await lines(p, room)
                    no_duplicates(ls)
                    got = await texts(p, room)
                    for t in set(got):
                        assert got.count(t) == 1, "%r shown %d times in #%s" % (t, got.count(t), room)
                    assert got[:len(before[(id(p), room)])] == before[(id(p), room)], "something was lost"
                    missed = [l for l in ls if l["text"] and l["text"].startswith("missed in")]
                    assert missed and all("missed" in l["cls"] for l in missed), missed
            assert await texts(a, "lobby") == await texts(b, "lobby")
            assert await texts(a, "dev") == await texts(b, "dev")
            # bob's current room is dev: the lobby lines he missed are unread.
            assert await b.eval("[...document.querySelectorAll('#rooms .room')].find((e) => "
                                "e.textContent.startsWith('#lobby')).getAttribute('aria-label')") == "#lobby, 2 unread"
            await carol.close()
            await b.screenshot(shot.replace(".png", "-recovered.png"))

            # Live again: a line goes both ways.
            await say(a, "back again")
            await wait_text(b, "dev", "back again")

            # Markup from a user is text; nothing runs.
            await say(b, XSS)
            await wait_text(a, "dev", XSS)
            await asyncio.sleep(0.5)
            assert await a.eval("document.querySelectorAll('#logs img').length") == 0
            assert a.dialogs == [] and b.dialogs == []
            # The CSP refuses inline script, even when the page adds it itself.
            blocked = await a.eval("""new Promise((ok) => {
                document.addEventListener('securitypolicyviolation', (e) => ok(e.violatedDirective), {once: true});
                const s = document.createElement('script');
                s.textContent = 'window.pwned = 1';
                document.body.append(s);
                setTimeout(() => ok(window.pwned === 1 ? 'ran' : 'no event'), 2000);
            })""")
            assert blocked.startswith("script-src"), blocked

            # A phone: one column, no sideways scrolling, the input on screen.
            await b.cmd("Emulation.setDeviceMetricsOverride",
                        {"width": 360, "height": 640, "deviceScaleFactor": 2, "mobile": True})
            await asyncio.sleep(0.2)
            assert await b.eval("document.documentElement.scrollWidth") <= 360
            box = await b.eval("JSON.stringify(document.getElementById('input').getBoundingClientRect())")
            box = json.loads(box)
            assert box["bottom"] <= 640 and box["right"] <= 360 and box["width"] > 150, box
            # Dark, when the system says so.
            light = await b.eval("getComputedStyle(document.body).backgroundColor")
            await b.cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
            dark = await b.eval("getComputedStyle(document.body).backgroundColor")
            assert light == "rgb(255, 255, 255)" and dark != light, (light, dark)

            # A new database (a new epoch): the ids the pages know mean
            # nothing there. They say so and reload each room's history.
            assert server.terminate() == 0
            server = Server(["--port", str(port), "--history", db + ".new"])
            await wait_open(a, "alice", 40)
            await wait_open(b, "bob", 40)
            await a.wait_for("[...document.querySelectorAll('.line.warn')].some((e) => "
                             "e.textContent.includes('can no longer be recovered'))", TIMEOUT, "the notice")
            await a.wait_for("[...document.querySelectorAll('.divider')].some((e) => "
                             "e.textContent === \"The server's history was reset\")", TIMEOUT, "the divider")
            await say(a, "after the reset")
            await wait_text(b, "dev", "after the reset")
            for p in (a, b):
                for room in ("lobby", "dev"):
                    no_duplicates(await lines(p, room))

            errors = [c for c in a.console + b.console if "exception" in c]
            assert errors == []
            assert server.alive()
    finally:
        server.stop()


def test_two_people_chat_across_rooms_a_reload_and_a_restart(tmp_path):
    shot_dir = os.environ.get("WSCHAT_BUILD_DIR") or str(tmp_path)
    shot = os.path.join(shot_dir, "web-screenshot.png")
    asyncio.run(asyncio.wait_for(run_scenario(free_port(), str(tmp_path / "chat.db"), shot), 240))
    assert os.path.getsize(shot) > 10000
