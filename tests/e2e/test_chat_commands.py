"""Chat commands, one group per command: /help, /nick, /join, /leave, /rooms,
/users, /whisper (/w, /msg), /me and /quit, with the notices each one sends
and the error line for each misuse."""
import asyncio
import re

import pytest

from chatclient import Clients, run, say

COMMANDS = ["/help", "/nick", "/join", "/leave", "/rooms", "/users", "/whisper", "/me", "/quit"]


async def move(client, cmd, new_room, old_members=(), new_members=()):
    """client sends cmd (a /join or /leave); the old room is told it left,
    the new room and the mover are told it joined."""
    old = client.room
    await client.send(cmd)
    await client.expect("* %s joined #%s" % (client.name, new_room))
    for m in old_members:
        await m.expect("* %s left #%s" % (client.name, old))
    for m in new_members:
        await m.expect("* %s joined #%s" % (client.name, new_room))
    client.room = new_room


# /help

@pytest.mark.parametrize("cmd", ["/help", "/HELP", "/Help"])
def test_help_lists_every_command_in_one_message(chat_server, cmd):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send(cmd)
            text = await alice.recv()
            missing = [w for w in COMMANDS if not re.search(re.escape(w) + r"\b", text)]
            assert not missing, "/help does not mention %r in %r" % (missing, text)
            assert not text.startswith("! "), text
            await say(alice, "after help", bob)  # /help was one message, and only for alice
    run(body(), chat_server)


# /nick

def test_nick_tells_the_room_and_renames(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            carol = await c.join("carol", "dev")
            await alice.send("/nick alicia")
            for u in (alice, bob):
                await u.expect("* alice is now known as alicia")
            alice.name = "alicia"
            await say(alice, "new name", bob)
            await carol.expect_quiet()
            await say(carol, "dev sentinel")  # carol (another room) was not told
            await alice.send("/users")
            await alice.expect("* users in #lobby: alicia, bob")
    run(body(), chat_server)


@pytest.mark.parametrize("cmd", ["/NICK", "/Nick"])
def test_nick_command_word_is_case_insensitive(chat_server, cmd):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            await alice.send(cmd + " zed")
            await alice.expect("* alice is now known as zed")
    run(body(), chat_server)


@pytest.mark.parametrize("asked", ["bob", "BOB", "Bob"])
def test_nick_to_a_taken_name(chat_server, asked):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/nick " + asked)
            await alice.expect("! name already taken: " + asked)
            await say(alice, "still alice", bob)  # bob saw no rename
    run(body(), chat_server)


@pytest.mark.parametrize("bad", ["bad.name", "x" * 33, "a/b", "caf\u00e9"])
def test_nick_to_an_invalid_name(chat_server, bad):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/nick " + bad)
            line = await alice.expect_error()
            assert "32" in line, "the error should explain the rule (1-32 ...): %r" % line
            await say(alice, "still alice", bob)
    run(body(), chat_server)


def test_nick_without_a_name_is_an_error(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/nick")
            await alice.expect_error()
            await say(alice, "still alice", bob)
    run(body(), chat_server)


def test_nick_accepts_32_characters(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            long = "N-_" + "x" * 29
            await alice.send("/nick " + long)
            await alice.expect("* alice is now known as " + long)
    run(body(), chat_server)


def test_old_name_is_free_after_nick(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/nick alicia")
            for u in (alice, bob):
                await u.expect("* alice is now known as alicia")
            newcomer = await c.join("alice")
            for u in (alice, bob):
                await u.expect("* alice joined #lobby")
            await bob.send("/w alice for the newcomer")
            await bob.expect("[whisper to alice] for the newcomer")
            await newcomer.expect("[whisper from bob] for the newcomer")
            await alice.expect_quiet()
    run(body(), chat_server)


# /join and /leave

def test_join_moves_between_rooms_with_notices(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            carol = await c.join("carol", "dev")
            await move(alice, "/join dev", "dev", old_members=[bob], new_members=[carol])
            await say(alice, "in dev now", carol)
            await bob.expect_quiet()
            await say(bob, "lobby sentinel")  # bob got nothing of #dev
    run(body(), chat_server)


def test_join_creates_a_new_room(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await move(alice, "/join brand-new.room_1", "brand-new.room_1", old_members=[bob])
            await say(alice, "alone here")
            await alice.send("/rooms")
            await alice.expect("* rooms: brand-new.room_1 (1), lobby (1)")
    run(body(), chat_server)


@pytest.mark.parametrize("cmd", ["/JOIN", "/Join"])
def test_join_command_word_is_case_insensitive(chat_server, cmd):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            await move(alice, cmd + " dev", "dev")
    run(body(), chat_server)


def test_join_the_room_you_are_in_is_an_error(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/join lobby")
            await alice.expect_error()
            await move(alice, "/join dev", "dev", old_members=[bob])
            await alice.send("/join dev")
            await alice.expect_error()
            await alice.send("/join DEV")  # room names are case-insensitive
            await alice.expect_error()
            await say(alice, "still in dev")
            await bob.expect_quiet()
    run(body(), chat_server)


def test_room_names_are_case_insensitive(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/join Dev")
            line = await alice.recv()
            assert re.fullmatch(r"\* alice joined #(?i:dev)", line), line
            shown = line.rsplit("#", 1)[1]  # "Dev" or "dev": the contract leaves it open
            await bob.expect("* alice left #lobby")
            await bob.send("/join dev")
            await bob.expect("* bob joined #" + shown)
            await alice.expect("* bob joined #" + shown)  # same room: alice is told
            await bob.send("hello")
            for u in (alice, bob):
                await u.expect("[%s] bob: hello" % shown)
            await bob.send("/rooms")
            await bob.expect("* rooms: %s (2), lobby (0)" % shown)
    run(body(), chat_server)


@pytest.mark.parametrize("bad", ["bad!room", "x" * 65, "a/b", "caf\u00e9"])
def test_join_an_invalid_room(chat_server, bad):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/join " + bad)
            line = await alice.expect_error()
            assert "64" in line, "the error should explain the rule (1-64 ...): %r" % line
            await say(alice, "still in the lobby", bob)
    run(body(), chat_server)


def test_join_without_a_room_is_an_error(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/join")
            await alice.expect_error()
            await say(alice, "still in the lobby", bob)
    run(body(), chat_server)


def test_join_accepts_64_characters(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            room = "r.-_" + "y" * 60
            await move(alice, "/join " + room, room)
            await say(alice, "long room")
    run(body(), chat_server)


def test_leave_goes_back_to_the_lobby(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            bob = await c.join("bob")
            alice, carol = await c.room(["alice", "carol"], "dev")
            await move(alice, "/leave", "lobby", old_members=[carol], new_members=[bob])
            await say(alice, "back", bob)
            await carol.expect_quiet()
            await say(carol, "dev sentinel")
    run(body(), chat_server)


@pytest.mark.parametrize("cmd", ["/LEAVE", "/Leave"])
def test_leave_command_word_is_case_insensitive(chat_server, cmd):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice", "dev")
            await move(alice, cmd, "lobby")
    run(body(), chat_server)


def test_leave_in_the_lobby_is_an_error(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/leave")
            await alice.expect_error()
            await say(alice, "still in the lobby", bob)
    run(body(), chat_server)


# /rooms

def test_rooms_lists_rooms_sorted_with_counts(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob, carol, dave = await c.room(["alice", "bob", "carol", "dave"])
            await alice.send("/rooms")
            await alice.expect("* rooms: lobby (4)")
            await move(bob, "/join zoo", "zoo", old_members=[alice, carol, dave])
            await move(carol, "/join dev", "dev", old_members=[alice, dave])
            await move(dave, "/join abc", "abc", old_members=[alice])
            await alice.send("/rooms")
            await alice.expect("* rooms: abc (1), dev (1), lobby (1), zoo (1)")
            await move(dave, "/join dev", "dev", new_members=[carol])   # abc empties
            await dave.send("/rooms")
            await dave.expect("* rooms: dev (2), lobby (1), zoo (1)")
    run(body(), chat_server)


def test_empty_room_disappears_but_lobby_stays(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            await move(alice, "/join dev", "dev")
            await alice.send("/rooms")
            await alice.expect("* rooms: dev (1), lobby (0)")
            await move(alice, "/leave", "lobby")
            await alice.send("/rooms")
            await alice.expect("* rooms: lobby (1)")
            bob = await c.join("bob", "ops")
            await bob.send("/rooms")
            await bob.expect("* rooms: lobby (1), ops (1)")
            await bob.close()
            # bob's room is not alice's, so no notice tells her when the server
            # has processed his close: ask again until it has (bounded)
            for _ in range(20):
                await alice.send("/rooms")
                line = await alice.recv()
                if line != "* rooms: lobby (1), ops (1)":
                    break
                await asyncio.sleep(0.05)
            assert line == "* rooms: lobby (1)", line
    run(body(), chat_server)


@pytest.mark.parametrize("cmd", ["/ROOMS", "/Rooms"])
def test_rooms_command_word_is_case_insensitive(chat_server, cmd):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            await alice.send(cmd)
            await alice.expect("* rooms: lobby (1)")
    run(body(), chat_server)


# /users

def test_users_lists_the_room_sorted_case_insensitively(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            carol, bob, alice = await c.room(["carol", "Bob", "alice"])
            await c.join("zed", "dev")
            await alice.send("/users")
            await alice.expect("* users in #lobby: alice, Bob, carol")
            await bob.send("/USERS")
            await bob.expect("* users in #lobby: alice, Bob, carol")
    run(body(), chat_server)


def test_users_star_lists_everyone_with_their_room(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            carol, alice = await c.room(["carol", "alice"])
            bob = await c.join("bob", "dev")
            await c.join("dave", "zoo")
            await alice.send("/users *")
            await alice.expect("* users: alice (#lobby), bob (#dev), carol (#lobby), dave (#zoo)")
            await bob.send("/users")
            await bob.expect("* users in #dev: bob")
    run(body(), chat_server)


# /whisper, /w, /msg

@pytest.mark.parametrize("cmd", ["/whisper", "/w", "/msg", "/WHISPER", "/W", "/Msg"])
def test_whisper_reaches_only_its_target(chat_server, cmd):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob, carol = await c.room(["alice", "bob", "carol"])
            await alice.send("%s bob meet me at noon" % cmd)
            await alice.expect("[whisper to bob] meet me at noon")
            await bob.expect("[whisper from alice] meet me at noon")
            await carol.expect_quiet()
            # sentinel: the next thing carol (and bob) get is this room line
            await say(alice, "public again", bob, carol)
    run(body(), chat_server)


def test_whisper_crosses_rooms(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, carol = await c.room(["alice", "carol"])
            bob, dave = await c.room(["bob", "dave"], "dev")
            await alice.send("/w bob psst")
            await alice.expect("[whisper to bob] psst")
            await bob.expect("[whisper from alice] psst")
            await bob.send("/msg alice right back")
            await bob.expect("[whisper to alice] right back")
            await alice.expect("[whisper from bob] right back")
            await carol.expect_quiet(0.1)
            await dave.expect_quiet(0.1)
            await say(alice, "lobby sentinel", carol)
            await say(bob, "dev sentinel", dave)
    run(body(), chat_server)


def test_whisper_to_an_unknown_user(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/whisper carol are you there")
            await alice.expect("! no such user: carol")
            await say(alice, "sentinel", bob)
    run(body(), chat_server)


@pytest.mark.parametrize("cmd", ["/whisper bob", "/w bob", "/msg bob", "/w", "/whisper"])
def test_whisper_without_text_shows_usage(chat_server, cmd):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send(cmd)
            await alice.expect_error("! usage: ")
            await bob.expect_quiet()
            await say(alice, "sentinel", bob)
    run(body(), chat_server)


def test_whisper_to_a_departed_user(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await bob.close()
            await alice.expect("* bob left #lobby")
            await alice.send("/w bob still there?")
            await alice.expect("! no such user: bob")
    run(body(), chat_server)


# /me

@pytest.mark.parametrize("cmd", ["/me", "/ME", "/Me"])
def test_me_sends_an_action_to_the_room(chat_server, cmd):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            carol = await c.join("carol", "dev")
            await alice.send(cmd + " waves at everyone")
            for u in (alice, bob):
                await u.expect("* alice waves at everyone")
            await carol.expect_quiet()
            await say(carol, "dev sentinel")
    run(body(), chat_server)


# /quit

def test_quit_closes_with_1000_and_tells_the_room(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob, carol = await c.room(["alice", "bob", "carol"])
            await alice.send("/quit")
            await alice.expect_closed(1000)
            for u in (bob, carol):
                await u.expect("* alice left #lobby")
            await say(bob, "she is gone", carol)  # told exactly once
    run(body(), chat_server)


@pytest.mark.parametrize("cmd", ["/quit", "/QUIT", "/Quit"])
def test_quit_with_a_reason(chat_server, cmd):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send(cmd + " gotta go, bye!")
            await alice.expect_closed(1000)
            await bob.expect("* alice left #lobby (gotta go, bye!)")
            await say(bob, "sentinel")
    run(body(), chat_server)


def test_quit_from_another_room_tells_only_that_room(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            carol = await c.join("carol", "dev")
            await move(alice, "/join dev", "dev", old_members=[bob], new_members=[carol])
            await alice.send("/quit later")
            await alice.expect_closed(1000)
            await carol.expect("* alice left #dev (later)")
            await bob.expect_quiet()
            await say(bob, "lobby sentinel")
            await say(carol, "dev sentinel")
    run(body(), chat_server)


def test_name_is_free_after_quit(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/quit")
            await alice.expect_closed(1000)
            await bob.expect("* alice left #lobby")
            await c.join("alice")
            await bob.expect("* alice joined #lobby")
    run(body(), chat_server)


# control characters in command text, and oversized arguments

def test_control_characters_in_me_and_whisper_become_spaces(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/me waves\nand\rbows")
            for u in (alice, bob):
                await u.expect("* alice waves and bows")
            await alice.send("/w bob one\ntwo\x1bthree")
            await alice.expect("[whisper to bob] one two three")
            await bob.expect("[whisper from alice] one two three")
    run(body(), chat_server)


def test_control_characters_in_the_quit_reason_become_spaces(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/quit so\nlong\r[lobby] bob: forged")
            await alice.expect_closed(1000)
            await bob.expect("* alice left #lobby (so long [lobby] bob: forged)")
            await say(bob, "sentinel")
    run(body(), chat_server)


@pytest.mark.parametrize("cmd", ["/nick ", "/join ", "/w ", "/whisper "])
def test_huge_argument_is_an_error_line(chat_server, cmd):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            arg = "q" * 5000 + (" hello" if cmd.startswith("/w") else "")
            await alice.send(cmd + arg)
            await alice.expect_error()
            await say(alice, "still fine", bob)
    run(body(), chat_server)


def test_guest_names_never_collide_with_chosen_ones(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            first = await c.join("guest-1")
            other = await c.join("guest-3")
            await first.expect("* guest-3 joined #lobby")
            await other.send("/nick guest-2")
            for u in (first, other):
                await u.expect("* guest-3 is now known as guest-2")
            seen = {"guest-1", "guest-2"}
            for _ in range(3):
                g = await c.join()              # checks the welcome is a guest name
                assert g.name not in seen, "%s was given to a second client" % g.name
                seen.add(g.name)
            await first.send("/users")
            line = await first.recv()
            # 3 joined notices came first for first; then the /users answer
            while line.startswith("* guest-") and " joined " in line:
                line = await first.recv()
            assert line == "* users in #lobby: " + ", ".join(sorted(seen)), line
    run(body(), chat_server)


def test_two_clients_taking_the_same_name_at_once(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob, carol = await c.room(["alice", "bob", "carol"])
            await asyncio.gather(alice.send("/nick sam"), bob.send("/nick SAM"))
            renames = {"* alice is now known as sam": (alice, bob, "SAM"),
                       "* bob is now known as SAM": (bob, alice, "sam")}
            first = await carol.recv()
            assert first in renames, first
            winner, loser, asked = renames[first]
            # the server handled the winner's /nick first: the loser hears the
            # rename (a room notice), then is refused; the winner gets no error
            await winner.expect(first)
            await loser.expect(first, "! name already taken: " + asked)
            await say(carol, "sentinel", alice, bob)
    run(body(), chat_server)


def test_users_and_rooms_come_in_pages_of_200(start_server):
    # 230 clients, each in a room of its own: /users * and /rooms would be
    # one reply of every name; they come 200 to a message, with the way to
    # the next page, and a page past the end is a usage error.
    s = start_server("--max-per-ip", "0", "--rate", "0")
    n = 230

    async def body():
        async with Clients(s) as c:
            clients = []
            for i in range(n):
                clients.append(await c.join("p%03d" % i, "r%03d" % i))
            asker = clients[0]
            await asker.send("/users *")
            first = await asker.recv()
            names = ["p%03d (#r%03d)" % (i, i) for i in range(n)]
            assert first == "* users: " + ", ".join(names[:200]) + \
                " ... (page 1 of 2, 230 in all: /users * 2 for more)", first[-120:]
            await asker.send("/users * 2")
            assert await asker.recv() == "* users: " + ", ".join(names[200:]) + " (page 2 of 2, 230 in all)"
            await asker.send("/users * 3")
            await asker.expect("! usage: /users or /users *")
            rooms = sorted(["lobby (0)"] + ["r%03d (1)" % i for i in range(n)])
            await asker.send("/rooms")
            assert await asker.recv() == "* rooms: " + ", ".join(rooms[:200]) + \
                " ... (page 1 of 2, 231 in all: /rooms 2 for more)"
            await asker.send("/rooms 2")
            assert await asker.recv() == "* rooms: " + ", ".join(rooms[200:]) + " (page 2 of 2, 231 in all)"
            await asker.send("/rooms x")
            await asker.expect("! usage: /rooms [PAGE]")
            await asker.send("/users")  # a small list: exactly as before
            await asker.expect("* users in #r000: p000")
    run(body(), s, timeout=60)
