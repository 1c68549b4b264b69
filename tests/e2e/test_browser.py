"""chat-cli with a real browser: headless Chromium's own WebSocket (its
handshake offers permessage-deflate, sends Origin, and so on) against
`chat-cli --echo` and the chat, as the README tells a user to try."""
import os

import pytest

from browser import CHROMIUM, Browser

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (./dev test installs it)")


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


ECHO_JS = """
new Promise((resolve, reject) => {
  const ws = new WebSocket(%r);
  ws.binaryType = "arraybuffer";
  const got = [];
  ws.onopen = () => {
    ws.send("Hello from browser!");
    ws.send(new Uint8Array([0, 1, 2, 255]).buffer);
    ws.send("\u00e9t\u00e9 \U0001F600");
    ws.send("a long line, compressed both ways. ".repeat(40));
  };
  ws.onmessage = (e) => {
    got.push(typeof e.data === "string" ? e.data : Array.from(new Uint8Array(e.data)));
    if (got.length === 4) ws.close(1000, "done");
  };
  ws.onclose = (e) => resolve({got, code: e.code, clean: e.wasClean, ext: ws.extensions, proto: ws.protocol});
  ws.onerror = () => reject("websocket error");
  setTimeout(() => reject("timeout"), 5000);
})
"""


ECHOED = ["Hello from browser!", [0, 1, 2, 255], "\u00e9t\u00e9 \U0001F600",
          "a long line, compressed both ways. " * 40]


def test_browser_echo(browser, start_server):
    s = start_server("--echo")
    r = browser.eval(ECHO_JS % s.url)
    assert r["got"] == ECHOED
    assert r["code"] == 1000 and r["clean"] is True
    # permessage-deflate offered and accepted (issue 12): the long line went
    # compressed both ways
    assert r["ext"] == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def test_browser_echo_no_deflate(browser, start_server):
    s = start_server("--echo", "--no-deflate")
    r = browser.eval(ECHO_JS % s.url)
    assert r["got"] == ECHOED and r["code"] == 1000
    assert r["ext"] == ""  # offered, declined


CHAT_JS = """
new Promise((resolve, reject) => {
  const open = (q) => new Promise((ok) => {
    const ws = new WebSocket(%r + q);
    ws.lines = [];
    ws.onmessage = (e) => ws.lines.push(e.data);
    ws.onopen = () => ok(ws);
    ws.onerror = () => reject("websocket error");
  });
  const until = (ws, line) => new Promise((ok) => {
    const t = setInterval(() => { if (ws.lines.includes(line)) { clearInterval(t); ok(); } }, 10);
  });
  setTimeout(() => reject("timeout"), 5000);
  (async () => {
    const a = await open("?name=alice");
    const b = await open("?name=bob");
    await until(a, "* bob joined #lobby");
    a.send("hi bob");
    await until(b, "[lobby] alice: hi bob");
    b.send("/whisper alice psst");
    await until(a, "[whisper from bob] psst");
    a.send("/quit bye");
    await until(b, "* alice left #lobby (bye)");
    resolve({a: a.lines, b: b.lines});
  })();
})
"""


def test_browser_chat(browser, start_server):
    s = start_server()
    r = browser.eval(CHAT_JS % s.url)
    assert r["a"][:4] == ["* welcome, alice! you are in #lobby; type /help for commands",
                          "* bob joined #lobby", "[lobby] alice: hi bob", "[whisper from bob] psst"]
    assert r["b"] == ["* welcome, bob! you are in #lobby; type /help for commands",
                      "[lobby] alice: hi bob", "[whisper to alice] psst", "* alice left #lobby (bye)"]


def test_browser_sees_the_close_code_of_a_too_big_message(browser, start_server):
    s = start_server("--echo", "--max-message", "1000")
    r = browser.eval("""
new Promise((resolve, reject) => {
  const ws = new WebSocket(%r);
  ws.onopen = () => ws.send("x".repeat(1001));
  ws.onclose = (e) => resolve({code: e.code, reason: e.reason});
  setTimeout(() => reject("timeout"), 5000);
})""" % s.url)
    assert r == {"code": 1009, "reason": "message too big"}
