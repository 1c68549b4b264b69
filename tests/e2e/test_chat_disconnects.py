"""Disconnects of every kind, and messages that are too large.

Whatever way a client goes (close handshake, TCP FIN without a close frame,
TCP reset, half a frame then gone, a dead peer that stops answering pings,
a message over --max-message), its room is told "* NAME left #ROOM" exactly
once, its name is free again, and the server keeps serving everyone else.
"Exactly once" is checked with a sentinel: after the notice, the next thing
the room receives is a fresh chat line."""
import asyncio
import re
import subprocess

import pytest

import conftest
from chatclient import GUEST_RE, Clients, RawClient, parse_welcome, run, say

MIB = 1024 * 1024


async def raw_joins(c, name, members, room=None):
    raw = await c.raw(name, room)
    for m in members:
        await m.expect("* %s joined #%s" % (name, raw.room))
    return raw


async def told_once_and_healthy(c, server, name, members, room="lobby"):
    """members are told NAME left exactly once; NAME can be taken again;
    the server still delivers lines."""
    for m in members:
        await m.expect("* %s left #%s" % (name, room))
    await say(members[0], "after %s left" % name, *members[1:])   # sentinel: no second notice
    again = await c.join(name, room)                             # the name is free
    for m in members:
        await m.expect("* %s joined #%s" % (name, room))
    await say(again, "%s is back" % name, *members)
    assert server.alive()


def test_close_handshake(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob, carol = await c.room(["alice", "bob", "carol"])
            await carol.close()
            await told_once_and_healthy(c, chat_server, "carol", [alice, bob])
    run(body(), chat_server)


def test_close_frame_from_a_raw_client(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            raw = await raw_joins(c, "raw", [alice, bob])
            await raw.write(RawClient.frame(0x8, b"\x03\xe8bye"))
            op, fin, payload = await raw.recv_frame()
            assert op == 0x8 and payload[:2] == b"\x03\xe8", (op, payload)  # echoed 1000
            raw.close_tcp()
            await told_once_and_healthy(c, chat_server, "raw", [alice, bob])
    run(body(), chat_server)


def test_tcp_close_without_a_close_frame(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            raw = await raw_joins(c, "raw", [alice, bob])
            raw.close_tcp()
            await told_once_and_healthy(c, chat_server, "raw", [alice, bob])
    run(body(), chat_server)


def test_tcp_reset(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            raw = await raw_joins(c, "raw", [alice, bob])
            raw.abort()
            await told_once_and_healthy(c, chat_server, "raw", [alice, bob])
    run(body(), chat_server)


def test_websockets_transport_abort(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            eve = await c.join("eve")
            for u in (alice, bob):
                await u.expect("* eve joined #lobby")
            eve.ws.transport.abort()
            await told_once_and_healthy(c, chat_server, "eve", [alice, bob])
    run(body(), chat_server)


@pytest.mark.parametrize("how", ["fin", "reset"])
@pytest.mark.parametrize("cut", ["one-header-byte", "header-only", "half-payload", "mask-only"])
def test_drop_in_the_middle_of_a_frame(chat_server, how, cut):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            raw = await raw_joins(c, "raw", [alice, bob])
            frame = RawClient.frame(0x1, b"this line never completes, " * 4)  # 108 bytes: 2+4 header
            part = {"one-header-byte": frame[:1], "header-only": frame[:2],
                    "mask-only": frame[:6], "half-payload": frame[:60]}[cut]
            await raw.write(part)
            await asyncio.sleep(0.05)
            raw.close_tcp() if how == "fin" else raw.abort()
            await told_once_and_healthy(c, chat_server, "raw", [alice, bob])
    run(body(), chat_server)


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_drop_in_the_middle_of_a_fragmented_message(chat_server, how):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            raw = await raw_joins(c, "raw", [alice, bob])
            await raw.write(RawClient.frame(0x1, b"first fragment ", fin=False))
            await raw.write(RawClient.frame(0x0, b"second fragment ", fin=False))
            await asyncio.sleep(0.05)
            raw.close_tcp() if how == "fin" else raw.abort()
            # nothing of the unfinished message reaches the room: the notice comes first
            await told_once_and_healthy(c, chat_server, "raw", [alice, bob])
    run(body(), chat_server)


def test_complete_fragmented_message_from_a_raw_client_is_one_line(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            raw = await raw_joins(c, "raw", [alice])
            await raw.write(RawClient.frame(0x1, b"hello ", fin=False))
            await raw.write(RawClient.frame(0x9, b"ping in between"))   # control frame between fragments
            await raw.write(RawClient.frame(0x0, b"wor", fin=False))
            await raw.write(RawClient.frame(0x0, b"ld"))
            op, fin, payload = await raw.recv_frame()
            assert (op, payload) == (0xA, b"ping in between"), (op, payload)
            assert await raw.recv() == "[lobby] raw: hello world"
            await alice.expect("[lobby] raw: hello world")
    run(body(), chat_server)


def test_disconnect_tells_only_the_current_room(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            carol = await c.join("carol", "dev")
            raw = await raw_joins(c, "raw", [alice])
            await raw.send_text("/join dev")
            assert await raw.recv() == "* raw joined #dev"
            await alice.expect("* raw left #lobby")
            await carol.expect("* raw joined #dev")
            raw.abort()
            await carol.expect("* raw left #dev")
            await say(carol, "dev sentinel")
            await alice.expect_quiet()
            await say(alice, "lobby sentinel")
    run(body(), chat_server)


def test_disconnect_after_nick_uses_the_new_name(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            raw = await raw_joins(c, "raw", [alice])
            await raw.send_text("/nick renamed")
            assert await raw.recv() == "* raw is now known as renamed"
            await alice.expect("* raw is now known as renamed")
            raw.abort()
            await alice.expect("* renamed left #lobby")
            await say(alice, "sentinel")
            await c.join("raw")          # both names are free
            await alice.expect("* raw joined #lobby")
            await c.join("renamed")
            await alice.expect("* renamed joined #lobby")
    run(body(), chat_server)


def test_many_abrupt_drops(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            raws = []
            for i in range(20):
                raws.append(await raw_joins(c, "r%d" % i, [alice]))
            for i, r in enumerate(raws):
                if i % 3 == 0:
                    r.abort()
                elif i % 3 == 1:
                    r.close_tcp()
                else:
                    await r.write(RawClient.frame(0x1, b"x" * 50)[:20])
                    r.abort()
            got = await alice.recv_n(20)
            assert sorted(got) == sorted("* r%d left #lobby" % i for i in range(20)), got
            await say(alice, "sentinel")
            await alice.send("/users *")
            await alice.expect("* users: alice (#lobby)")
            assert chat_server.alive()
    run(body(), chat_server)


def test_reset_of_a_client_that_stopped_reading(start_server):
    chat_server = start_server("--rate", "0")   # 150 lines at once: not a flood test

    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            raw = await raw_joins(c, "raw", [alice])   # raw never reads from here on
            text = "z" * 8000
            n = 150                                    # ~1.2 MB towards raw
            for _ in range(n):
                await alice.send(text)
            raw.abort()
            got = await alice.recv_n(n + 1)
            lines = [g for g in got if g.startswith("[")]
            notices = [g for g in got if not g.startswith("[")]
            assert lines == ["[lobby] alice: " + text] * n
            assert notices == ["* raw left #lobby"], notices
            await say(alice, "sentinel")
            assert chat_server.alive()
    run(body(), chat_server)


# --max-message

def test_message_at_the_limit_is_taken_and_one_byte_more_closes_1009(start_server):
    """--max-message is the frame limit: a message of exactly that size is
    read (as a chat line it is too long: its rendering would not fit, see
    test_chat_limits.py), one byte more closes with 1009."""
    server = start_server("--max-message", "1000")

    async def body():
        async with Clients(server) as c:
            alice, big = await c.room(["alice", "big"])
            await big.send("a" * 1000)
            await big.expect("! line too long (at most 124 bytes)")
            await say(big, "a" * 124, alice)
            try:
                await big.send("b" * 1001)
            except Exception:
                pass   # the server may close while we are still sending
            await big.expect_closed(1009)
            await alice.expect("* big left #lobby")
            await say(alice, "server still fine")
            await c.join("big")
            await alice.expect("* big joined #lobby")
            assert server.alive()
    run(body(), server)


def test_limit_counts_bytes_not_characters(start_server):
    server = start_server("--max-message", "100")

    async def body():
        async with Clients(server) as c:
            alice, big = await c.room(["alice", "big"])
            await big.send("\u00e9" * 50)             # 100 bytes: read (too long to say)
            await big.expect_error("! line too long")
            await big.send("\u00e9" * 51)             # 102 bytes, 51 characters
            await big.expect_closed(1009)
            await alice.expect("* big left #lobby")
            await say(alice, "s")       # (max-message - 256) / 6 < 1: one byte
    run(body(), server)


def test_limit_applies_to_a_fragmented_message(start_server):
    server = start_server("--max-message", "1000")

    async def body():
        async with Clients(server) as c:
            alice, big = await c.room(["alice", "big"])
            try:
                await big.send(iter(["c" * 400, "c" * 400, "c" * 400]))   # 3 fragments, 1200 bytes
            except Exception:
                pass
            await big.expect_closed(1009)
            await alice.expect("* big left #lobby")
            await say(alice, "sentinel")
            assert server.alive()
    run(body(), server)


def test_default_limit_is_one_mebibyte(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, big = await c.room(["alice", "big"])
            await big.send("m" * MIB)          # read, but no line is that long
            await big.expect("! line too long (at most 65536 bytes)")
            try:
                await big.send("n" * (MIB + 1))
            except Exception:
                pass
            await big.expect_closed(1009)
            await alice.expect("* big left #lobby")
            await say(alice, "server still fine")
            assert chat_server.alive()
    run(body(), chat_server)


def test_oversized_frame_header_alone_closes_1009(start_server):
    """A frame that announces more than the limit is refused from its header:
    the server need not wait for (or buffer) the payload."""
    server = start_server("--max-message", "1000")

    async def body():
        async with Clients(server) as c:
            alice = await c.join("alice")
            raw = await raw_joins(c, "raw", [alice])
            header = RawClient.frame(0x1, b"x" * 70000)[:14]    # 127 + 8-byte length + mask
            await raw.write(header)
            while True:
                op, fin, payload = await raw.recv_frame()
                if op == 0x8:
                    break
            assert payload[:2] == (1009).to_bytes(2, "big"), payload
            await raw.write(RawClient.frame(0x8, payload[:2]))   # complete the close handshake
            raw.close_tcp()
            await alice.expect("* raw left #lobby")
            await say(alice, "sentinel")
    run(body(), server)


# ping timeout

def _cli_help():
    try:
        return subprocess.run([conftest.CLI, "--help"], capture_output=True, text=True, timeout=5).stdout
    except Exception:
        return ""


def test_dead_peer_is_dropped_after_the_ping_timeout(start_server):
    help_text = _cli_help()
    lines = {f: re.search(r"^\s*--%s\b.*$" % f, help_text, re.M) for f in ("ping-interval", "ping-timeout")}
    if not all(lines.values()):
        pytest.skip("chat-cli --help shows no --ping-interval/--ping-timeout flags")
    # 0.3 s each, in the unit the help text names (seconds, else milliseconds)
    in_seconds = re.search(r"\bSECONDS?\b", lines["ping-interval"].group(0), re.I) is not None
    args = ["--ping-interval", "0.3" if in_seconds else "300", "--ping-timeout", "0.3" if in_seconds else "300"]
    if re.search(r"^\s*--close-timeout\b", help_text, re.M):
        args += ["--close-timeout", "0.5" if in_seconds else "500"]
    server = start_server(*args)

    async def body():
        async with Clients(server) as c:
            alice = await c.join("alice")          # websockets answers pings by itself
            await raw_joins(c, "raw", [alice])     # raw reads nothing, so never answers
            # interval + timeout + the server's close timeout (3 s default) if it
            # tries a close handshake with the dead peer first
            line = await alice.recv(timeout=7.0)
            assert line == "* raw left #lobby", line
            await say(alice, "alice survived the pings")
            await alice.expect_quiet(0.7)
            await say(alice, "still here")
    run(body(), server)


# drops around the handshake

@pytest.mark.parametrize("how", ["fin", "reset"])
def test_drop_during_the_http_handshake_is_not_a_member(chat_server, how):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            reader, writer = await asyncio.open_connection(chat_server.host, chat_server.port)
            writer.write(b"GET /?name=half HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            raw = RawClient(reader, writer)
            raw.close_tcp() if how == "fin" else raw.abort()
            await alice.expect_quiet()            # no join, no leave
            await say(alice, "sentinel")
            await c.join("half")                  # the name was never taken
            await alice.expect("* half joined #lobby")
            assert chat_server.alive()
    run(body(), chat_server)


def test_reset_right_after_the_handshake(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            raw = await RawClient.connect(chat_server, "quick")
            raw.abort()                           # before reading the welcome
            await alice.expect("* quick joined #lobby", "* quick left #lobby")
            await say(alice, "sentinel")
            await c.join("quick")
            await alice.expect("* quick joined #lobby")
    run(body(), chat_server)


def test_nothing_after_quit_is_delivered(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            raw = await raw_joins(c, "raw", [alice])
            # the quit and a line after it arrive in one TCP segment
            await raw.write(RawClient.frame(0x1, b"/quit bye") + RawClient.frame(0x1, b"ghost line"))
            while True:
                op, fin, payload = await raw.recv_frame()
                if op == 0x8:
                    break
            assert payload[:2] == (1000).to_bytes(2, "big"), payload
            raw.close_tcp()
            await alice.expect("* raw left #lobby (bye)")
            await say(alice, "sentinel")           # no "[lobby] raw: ghost line"
    run(body(), chat_server)


def test_very_long_name_in_the_url(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            other = await c.open("n" * 3000)
            name, _ = parse_welcome(await other.recv())
            assert GUEST_RE.match(name), name
            await other.expect_error("! invalid name: ")
            await alice.expect("* %s joined #lobby" % name)
            assert chat_server.alive()
    run(body(), chat_server)
