"""Nobody can make a line read as something it is not (issue 10, defect 5).

- A /me whose line would read exactly like a server notice ("* NAME joined
  #ROOM", "* NAME left #ROOM", "* OLD is now known as NEW", and the replies
  "* users in #ROOM: ..." / "* no history in #ROOM" for clients named users
  and no) is refused with a "! " line; nothing is said.
- In the text view, besides control characters, the code points that break
  or reorder a line or hide in it (U+0080-U+009F, U+061C, U+200B-U+200F,
  U+2028-U+202E, U+2060-U+206F, U+FEFF) are shown as one space each, in
  lines, actions, whispers and reasons. JSON clients get the text as sent.
- Names and rooms are ASCII only: such code points are refused there.
"""
import json

import pytest

from chatclient import Clients, run, say

JSON = ["wschat.v1.json"]
FORGED = "! that action would read like a server notice: say it another way"


@pytest.mark.parametrize("action", [
    "is now known as bob", "left #lobby", "left #lobby (bye)", "joined #dev",
    "\u200bjoined #dev", "  Is Now Known As bob",
])
def test_me_that_reads_like_a_notice_is_refused(chat_server, action):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("/me " + action)
            await alice.expect(FORGED)
            await say(alice, "sentinel", bob)           # bob saw nothing before it
            await alice.send("/me waves")               # the documented form still works
            for u in (alice, bob):
                await u.expect("* alice waves")
    run(body(), chat_server)


def test_me_imitating_a_users_reply_is_refused(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            users, bob = await c.room(["users", "bob"])
            await users.send("/me in #lobby: users, bob, admin")
            await users.expect(FORGED)
            await say(users, "sentinel", bob)
    run(body(), chat_server)


@pytest.mark.parametrize("cp", [
    "\u2028", "\u2029", "\u0085", "\u0080", "\u009b", "\u202a", "\u202e", "\u2066",
    "\u2069", "\u200b", "\u200d", "\u200f", "\u2060", "\ufeff", "\u061c",
])
def test_invisible_and_line_breaking_code_points_show_as_a_space(chat_server, cp):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await alice.send("hi" + cp + "[lobby] bob: forged")
            for u in (alice, bob):
                await u.expect("[lobby] alice: hi [lobby] bob: forged")
            await alice.send("/me waves" + cp + cp)
            for u in (alice, bob):
                await u.expect("* alice waves  ")
            await alice.send("/w bob psst" + cp)
            await bob.expect("[whisper from alice] psst ")
            await alice.expect("[whisper to bob] psst ")
            await alice.send("/quit bye" + cp)
            await alice.expect_closed(1000)
            await bob.expect("* alice left #lobby (bye )")
    run(body(), chat_server)


def test_json_clients_get_the_text_as_sent(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            js = await c.open("js", subprotocols=JSON)
            assert json.loads(await js.recv())["type"] == "welcome"
            assert json.loads(await js.recv())["type"] == "join"
            await alice.expect("* js joined #lobby")
            await alice.send("a\u202eb")
            await alice.expect("[lobby] alice: a b")
            got = json.loads(await js.recv())
            assert got["text"] == "a\u202eb", got
    run(body(), chat_server)


@pytest.mark.parametrize("cp", ["\u200b", "\u202e", "\u00e9", "\u0085"])
def test_names_and_rooms_refuse_them(chat_server, cp):
    async def body():
        async with Clients(chat_server) as c:
            alice = await c.join("alice")
            await alice.send("/nick al" + cp + "ice")
            await alice.expect_error("! invalid name: al?")
            await alice.send("/join de" + cp + "v")
            await alice.expect_error("! invalid room name: de?")
            guest = await c.open("bo" + cp + "b", "de" + cp + "v")
            line = await guest.recv()
            assert line.startswith("* welcome, guest-") and line.endswith(
                "you are in #lobby; type /help for commands"), line
            await guest.expect_error("! invalid name: bo?")
            await guest.expect_error("! invalid room name: de?")
            js = await c.open("js", subprotocols=JSON)
            assert json.loads(await js.recv())["type"] == "welcome"
            assert json.loads(await js.recv())["type"] == "join"
            for req, code in (({"type": "nick", "name": "j" + cp + "s"}, "invalid_name"),
                              ({"type": "join", "room": "r" + cp}, "invalid_room"),
                              ({"type": "whisper", "to": "alice" + cp, "text": "x"}, "invalid_name")):
                await js.send(json.dumps(req))
                err = json.loads(await js.recv())
                assert err["type"] == "error" and err["code"] == code, (req, err)
    run(body(), chat_server)
