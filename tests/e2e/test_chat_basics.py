"""Chat mode basics: the welcome, names and rooms asked for in the URL, how a
plain line is delivered, and what the server does with odd input (control
characters, empty lines, binary messages, unknown commands)."""
import asyncio

import pytest

from chatclient import GUEST_RE, Clients, RawClient, parse_welcome, run, say, welcome


def test_guests_are_numbered_from_one_per_server(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            g1 = await c.open()
            await g1.expect(welcome("guest-1"))
            g1.name, g1.room = "guest-1", "lobby"
            g2 = await c.open()
            await g2.expect(welcome("guest-2"))
            await g1.expect("* guest-2 joined #lobby")
    run(body(), chat_server)


def test_guest_numbering_restarts_in_a_new_server(start_server):
    async def body(server):
        async with Clients(server) as c:
            g = await c.open()
            await g.expect(welcome("guest-1"))
    for _ in range(2):
        server = start_server()
        run(body(server), server)


def test_joiner_gets_only_the_welcome_and_the_room_is_told(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            bob = await c.join("bob")
            await alice.expect("* bob joined #lobby")
            # bob is not told about his own arrival: his next line is his own chat line
            await say(bob, "hi", alice)
    run(body(), chat_server)


def test_room_from_url(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")            # lobby
            carol = await c.join("carol", "dev")
            await c.join("dave", "dev")
            await carol.expect("* dave joined #dev")
            await alice.expect_quiet()
            await say(alice, "lobby only")           # sentinel: nothing from #dev came before it
    run(body(), chat_server)


def test_name_taken_at_connect_gives_a_guest_name_and_an_error(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            other = await c.open("alice")
            name, room = parse_welcome(await other.recv())
            assert GUEST_RE.match(name) and room == "lobby"
            other.name, other.room = name, room
            await other.expect("! name already taken: alice")
            await alice.expect("* %s joined #lobby" % name)
            await say(other, "still here", alice)
    run(body(), chat_server)


def test_name_taken_is_case_insensitive_at_connect(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            other = await c.open("ALICE")
            name, _ = parse_welcome(await other.recv())
            assert GUEST_RE.match(name)
            await other.expect("! name already taken: ALICE")
            await alice.expect("* %s joined #lobby" % name)
    run(body(), chat_server)


@pytest.mark.parametrize("bad", ["bad.name", "x" * 33, "semi;colon", "sp ace", "caf\u00e9"])
def test_invalid_name_at_connect_gives_a_guest_name_and_an_error(chat_server, bad):
    async def body():
        async with Clients(chat_server) as c:
            other = await c.open(bad)
            name, room = parse_welcome(await other.recv())
            assert GUEST_RE.match(name) and room == "lobby"
            line = await other.expect_error("! invalid name: ")
            assert "32" in line, "the error should explain the rule (1-32 ...): %r" % line
    run(body(), chat_server)


@pytest.mark.parametrize("bad", ["bad!room", "x" * 65, "a/b"])
def test_invalid_room_at_connect_puts_the_client_in_the_lobby(chat_server, bad):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            other = await c.open("bob", bad)
            await other.expect(welcome("bob", "lobby"))
            line = await other.expect_error()
            assert "64" in line, "the error should explain the rule (1-64 ...): %r" % line
            await alice.expect("* bob joined #lobby")
    run(body(), chat_server)


@pytest.mark.parametrize("good", ["x" * 32, "A", "Z-9_z", "0"])
def test_valid_names_at_connect(chat_server, good):
    async def body():
        async with Clients(chat_server) as c:
            u = await c.join(good)
            await say(u, "ok")
    run(body(), chat_server)


def test_line_reaches_every_member_of_the_room_sender_included(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob, carol = await c.room(["alice", "bob", "carol"])
            await say(alice, "hello everyone", bob, carol)
            await say(carol, "hi alice", alice, bob)
    run(body(), chat_server)


def test_lines_stay_in_their_room(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            carol, dave = await c.room(["carol", "dave"], "dev")
            await alice.send("lobby line")
            await carol.send("dev line")
            for u in (alice, bob):
                await u.expect("[lobby] alice: lobby line")
            for u in (carol, dave):
                await u.expect("[dev] carol: dev line")
            await bob.expect_quiet()
            await dave.expect_quiet()
    run(body(), chat_server)


def test_utf8_text_is_delivered_intact(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await say(alice, "h\u00e9llo w\u00f6rld \u2014 \u4f60\u597d \U0001F30D", bob)
    run(body(), chat_server)


@pytest.mark.parametrize("ctl", ["\n", "\r", "\t", "\x00", "\x01", "\x1b", "\x7f"],
                         ids=["LF", "CR", "TAB", "NUL", "SOH", "ESC", "DEL"])
def test_control_characters_become_spaces(chat_server, ctl):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("one%stwo%sthree" % (ctl, ctl))
            for u in (alice, bob):
                await u.expect("[lobby] alice: one two three")
    run(body(), chat_server)


def test_a_multiline_message_stays_one_line(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("first\n[lobby] bob: forged")
            for u in (alice, bob):
                await u.expect("[lobby] alice: first [lobby] bob: forged")
            await say(bob, "real", alice)
    run(body(), chat_server)


def test_empty_lines_are_ignored(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("")
            await alice.send("")
            await say(alice, "after the empty ones", bob)
    run(body(), chat_server)


def test_binary_message_is_refused_and_the_connection_stays_open(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send(b"\x00\x01binary\xff")
            await alice.expect("! binary messages are not supported")
            await say(alice, "text still works", bob)  # bob saw nothing of the binary one
    run(body(), chat_server)


def test_unknown_command(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/foo")
            await alice.expect("! unknown command /foo, try /help")
            await alice.send("/foo bar baz")
            await alice.expect("! unknown command /foo, try /help")
            await say(alice, "next", bob)  # the room saw nothing of it
    run(body(), chat_server)


def test_a_line_arriving_one_byte_at_a_time(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            raw = await c.raw("slow")
            await alice.expect("* slow joined #lobby")
            data = RawClient.frame(0x1, "trickled h\u00e9llo".encode()) + RawClient.frame(0x1, b"/me nods")
            for i in range(len(data)):
                await raw.write(data[i:i + 1])
                await asyncio.sleep(0.002)
            assert await raw.recv() == "[lobby] slow: trickled h\u00e9llo"
            assert await raw.recv() == "* slow nods"
            await alice.expect("[lobby] slow: trickled h\u00e9llo", "* slow nods")
    run(body(), chat_server)
