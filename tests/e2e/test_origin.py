"""The Origin allow-list (issue 10, "Origin").

With --origin URL (repeatable), a WebSocket upgrade that carries an Origin
header (every browser sends its page's) from an origin not in the list is
answered 403 "origin not allowed", before the application hears of it.
Requests without an Origin header (most non-browser clients) and, without
the flag, requests from any origin are upgraded.
"""
import subprocess

import pytest

import conftest
from chatclient import Clients, run, say
from wsutil import raw_upgrade

ALLOWED = ("--origin", "https://chat.example.com", "--origin", "http://localhost:8080/")


def status_of(server, origin_lines):
    """The status line and body of an upgrade request with these headers."""
    s = raw_upgrade(server.port, "/?name=raw", "".join("Origin: %s\r\n" % o for o in origin_lines))
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 403"):
            while True:       # the body, then the server closes
                chunk = s.recv(4096)
                if not chunk:
                    break
                body += chunk
        return head.split(b"\r\n")[0].decode(), body.decode("utf-8", "replace")
    finally:
        s.close()


def test_without_the_flag_any_origin_is_upgraded(chat_server):
    for origins in ([], ["https://evil.example"], ["null"]):
        line, _ = status_of(chat_server, origins)
        assert line.startswith("HTTP/1.1 101"), (origins, line)


@pytest.mark.parametrize("origins", [
    ["https://chat.example.com"], ["HTTPS://Chat.Example.COM"], ["http://localhost:8080"], [],
])
def test_listed_origins_and_non_browsers_are_upgraded(start_server, origins):
    server = start_server(*ALLOWED)
    line, _ = status_of(server, origins)
    assert line.startswith("HTTP/1.1 101"), (origins, line)


@pytest.mark.parametrize("origins", [
    ["https://evil.example"], ["https://chat.example.com.evil.example"], ["http://chat.example.com"],
    ["https://chat.example.com:8443"], ["http://localhost:8081"], ["null"], [""],
    ["https://chat.example.com", "https://evil.example"],
])
def test_other_origins_get_403(start_server, origins):
    server = start_server(*ALLOWED)
    line, body = status_of(server, origins)
    assert line == "HTTP/1.1 403 Forbidden", (origins, line)
    assert body == "origin not allowed\n", body


def test_a_refused_browser_leaves_everyone_else_alone(start_server):
    server = start_server(*ALLOWED)

    async def body():
        async with Clients(server) as c:
            alice = await c.join("alice")
            browser = await c.join("bob", origin="https://chat.example.com")
            await alice.expect("* bob joined #lobby")
            for _ in range(3):
                line, _ = status_of(server, ["https://evil.example"])
                assert line == "HTTP/1.1 403 Forbidden", line
            alice.room = browser.room = "lobby"
            await say(alice, "hi", browser)
            await alice.send("/users")
            await alice.expect("* users in #lobby: alice, bob")
    run(body(), server)


@pytest.mark.parametrize("bad", ["chat.example.com", "https://chat.example.com/chat", "localhost:8080", "https://"])
def test_invalid_origin_flag_exits_2(bad):
    r = subprocess.run([conftest.CLI, "--port", "0", "--no-history", "--origin", bad],
                       capture_output=True, text=True, timeout=5)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert "--origin" in r.stderr
