"""The JSON subprotocol wschat.v1.json seen through chat-cli, as
docs/PROTOCOL.md section 2 and issue 8 (part 2) say it: negotiation, the
welcome, each request's round trip with exact object shapes and member
order, several rooms per client, ref echo, every error code with the
connection staying open and nothing broadcast, typing, and a JSON and a
text client sharing a room.

Most tests run with --no-history (then a join gets no history object);
the history side of the protocol is test_history.py's, except where a
test here says otherwise."""
import asyncio
import json

import pytest

from conftest import without_flood_control

from chatclient import run
from jsonclient import (SUBPROTOCOL, Pool, as_text_line, check_event, json_url, open_json_ws,
                        parse)



@pytest.fixture
def start_server(start_server):  # noqa: F811 (conftest's, without flood control)
    return without_flood_control(start_server)

@pytest.fixture
def srv(start_server):
    return start_server("--no-history")


# ---------------------------------------------------------------- negotiation

def test_offered_subprotocol_is_echoed_and_spoken(srv):
    async def body():
        ws = await open_json_ws(json_url(srv, "alice"))
        try:
            assert ws.subprotocol == SUBPROTOCOL
            raw = await asyncio.wait_for(ws.recv(), 3)
            w = parse(raw)
            assert w == {"type": "welcome", "name": "alice", "room": "lobby", "rooms": ["lobby"], "epoch": None}
            # compact JSON, members in the documented order
            assert raw == '{"type":"welcome","name":"alice","room":"lobby","rooms":["lobby"],"epoch":null}'
        finally:
            await ws.close()
    run(body(), srv)


def test_offered_among_others_is_picked(srv):
    async def body():
        ws = await open_json_ws(json_url(srv, "alice"), subprotocols=["chat.example", SUBPROTOCOL])
        try:
            assert ws.subprotocol == SUBPROTOCOL
            assert parse(await asyncio.wait_for(ws.recv(), 3))["type"] == "welcome"
        finally:
            await ws.close()
    run(body(), srv)


@pytest.mark.parametrize("offer", [None, ["chat.example"], ["wschat.v2.json", "wschat.v1"]])
def test_no_or_unknown_subprotocol_gets_text(srv, offer):
    async def body():
        ws = await open_json_ws(json_url(srv, "alice"), subprotocols=offer)
        try:
            assert ws.subprotocol is None, "server picked %r from %r" % (ws.subprotocol, offer)
            assert await asyncio.wait_for(ws.recv(), 3) == \
                "* welcome, alice! you are in #lobby; type /help for commands"
            await ws.send('{"type":"message","text":"hi"}')   # just a line in text
            assert await asyncio.wait_for(ws.recv(), 3) == '[lobby] alice: {"type":"message","text":"hi"}'
        finally:
            await ws.close()
    run(body(), srv)


def test_welcome_of_a_guest_in_a_room(srv):
    async def body():
        async with Pool(srv) as p:
            c = await p.jjoin(None, "dev", history=False)
            assert c.welcome["rooms"] == ["dev"] and c.welcome["epoch"] is None
            assert c.join_ev["name"] == c.name
    run(body(), srv)


def test_welcome_epoch_is_a_string_with_history(start_server, tmp_path):
    s = start_server("--history", str(tmp_path / "x.db"))

    async def body():
        async with Pool(s) as p:
            c = await p.jjoin("alice", "dev", history=True)
            e = c.welcome["epoch"]
            # a client must be able to send it back: epoch is 1-64 bytes
            assert isinstance(e, str) and 1 <= len(e.encode()) <= 64, e
            d = await p.jjoin("bob", "dev", history=True)
            assert d.welcome["epoch"] == e
    run(body(), s)


# ---------------------------------------------------------- round trips

def test_message_round_trip_shape_and_one_rendering(srv):
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("alice", "dev", history=False)
            b = await p.jjoin("bob", "dev", history=False)
            check_event(await a.recv_obj(), "join", room="dev", name="bob")
            await a.send({"type": "message", "text": "hi bob"})
            ea = check_event(await a.recv_obj(), "message", room="dev", **{"from": "alice"}, text="hi bob")
            ra = a.last_raw
            await b.recv_obj()
            assert b.last_raw == ra, "one rendering for every recipient: %r vs %r" % (b.last_raw, ra)
            assert ea["id"] > b.join_ev["id"]
            assert ra == json.dumps(ea, separators=(",", ":")), "not compact: %r" % ra
            # room given explicitly; members in any order; unknown members and null ignored
            await b.send('{"text":"x\\ny \\u00e9\\"","extra":{"a":[1,2]},"room":"dev","type":"message","ref":null}')
            for c in (a, b):
                check_event(await c.recv_obj(), "message", room="dev", **{"from": "bob"}, text='x\ny \u00e9"')
            await a.send({"type": "message", "text": "third", "room": None})
            for c in (a, b):
                m = check_event(await c.recv_obj(), "message", room="dev", text="third")
                assert "ref" not in m
    run(body(), srv)


def test_message_of_64k_is_accepted(srv):
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("alice", history=False)
            await a.send({"type": "message", "text": "x" * 65536})
            m = check_event(await a.recv_obj(), "message", room="lobby")
            assert m["text"] == "x" * 65536
    run(body(), srv)


def test_text_client_actions_and_quit_reason_in_json(srv):
    async def body():
        async with Pool(srv) as p:
            j = await p.jjoin("jay", "dev", history=False)
            t = await p.join("tex", "dev")
            check_event(await j.recv_obj(), "join", room="dev", name="tex")
            await t.send("/me waves")
            await t.expect("* tex waves")
            check_event(await j.recv_obj(), "message", room="dev", **{"from": "tex"}, text="waves", action=True)
            await j.send({"type": "message", "text": "/me is not a command here"})
            check_event(await j.recv_obj(), "message", text="/me is not a command here", action=False)
            await t.expect("[dev] jay: /me is not a command here")
            await t.send("/quit gone fishing")
            await t.expect_closed(1000)
            check_event(await j.recv_obj(), "leave", room="dev", name="tex", reason="gone fishing")
    run(body(), srv)


def test_join_keeps_other_rooms_and_message_defaults_to_current(srv):
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("alice", "dev", history=False)
            b = await p.jjoin("bob", "dev", history=False)
            await a.expect_obj("join")
            _, ev = await a.join_room("ops", history=False)
            assert ev["id"] > b.join_ev["id"]
            await b.expect_quiet()                          # ops is not bob's
            # still in dev: bob's line reaches alice
            await b.send({"type": "message", "text": "in dev"})
            for c in (a, b):
                check_event(await c.recv_obj(), "message", room="dev", text="in dev")
            # without room: the current room (joined last) is ops
            await a.send({"type": "message", "text": "to ops"})
            check_event(await a.recv_obj(), "message", room="ops", text="to ops")
            await a.send({"type": "message", "room": "dev", "text": "to dev"})
            for c in (a, b):
                check_event(await c.recv_obj(), "message", room="dev", text="to dev")
            await a.send({"type": "rooms", "ref": "r"})
            r = await a.expect_obj("rooms")
            assert r == {"type": "rooms", "rooms": [{"name": "dev", "users": 2}, {"name": "lobby", "users": 0},
                                                    {"name": "ops", "users": 1}], "ref": "r"}, r
            assert a.last_raw == ('{"type":"rooms","rooms":[{"name":"dev","users":2},{"name":"lobby","users":0},'
                                  '{"name":"ops","users":1}],"ref":"r"}')
            # leave without room: the current room (ops)
            await a.send({"type": "leave"})
            check_event(await a.recv_obj(), "leave", room="ops", name="alice")
            await b.expect_quiet()
            await a.send({"type": "message", "room": "ops", "text": "gone"})
            await a.expect_error("not_member")
    run(body(), srv)


def test_leaving_the_last_room_goes_back_to_lobby(srv):
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("alice", "dev", history=False)
            await a.join_room("ops", history=False)
            await a.send({"type": "leave", "room": "ops"})
            check_event(await a.recv_obj(), "leave", room="ops", name="alice")
            await a.send({"type": "leave", "room": "dev"})
            l = check_event(await a.recv_obj(), "leave", room="dev", name="alice")
            j = check_event(await a.recv_obj(), "join", room="lobby", name="alice")
            assert j["id"] > l["id"]
            # leaving lobby when it is the only room does nothing
            await a.send({"type": "leave", "room": "lobby"})
            await a.send({"type": "leave"})
            await a.send({"type": "message", "text": "still here"})
            check_event(await a.recv_obj(), "message", room="lobby", text="still here")
            await a.send({"type": "users", "room": "lobby", "ref": 1})
            assert await a.expect_obj("users") == {"type": "users", "room": "lobby", "users": ["alice"], "ref": 1}
    run(body(), srv)


def test_nick_gives_one_event_per_shared_room(srv):
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("alice", "dev", history=False)
            b = await p.jjoin("bob", "dev", history=False)
            await a.expect_obj("join")
            await a.join_room("ops", history=False)
            await b.join_room("ops", history=False)
            check_event(await a.recv_obj(), "join", room="ops", name="bob")
            t = await p.join("tex", "dev")
            for c in (a, b):
                check_event(await c.recv_obj(), "join", room="dev", name="tex")
            await b.send({"type": "nick", "name": "robert", "ref": "n"})
            for c in (a, b):
                evs = [await c.recv_obj(), await c.recv_obj()]
                for e in evs:
                    check_event(e, "nick", **{"from": "bob", "to": "robert"})
                    assert "ref" not in e
                assert sorted(e["room"] for e in evs) == ["dev", "ops"], evs
                assert evs[0]["id"] != evs[1]["id"]
            await t.expect("* bob is now known as robert")         # once in text
            await t.send("hi robert")
            await t.expect("[dev] tex: hi robert")
            for c in (a, b):
                check_event(await c.recv_obj(), "message", text="hi robert")
            # names are unique regardless of case
            await a.send({"type": "nick", "name": "ROBERT", "ref": "n2"})
            await a.expect_error("name_taken", ref="n2")
            await a.send({"type": "nick", "name": "Tex"})
            await a.expect_error("name_taken")
            await b.expect_quiet()
    run(body(), srv)


def test_whisper_same_object_to_both_nothing_to_others(srv):
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("alice", "dev", history=False)
            b = await p.jjoin("bob", "ops", history=False)
            c = await p.jjoin("carol", "dev", history=False)
            await a.expect_obj("join")
            t = await p.join("tex", "ops")
            await b.expect_obj("join")
            await a.send({"type": "whisper", "to": "bob", "text": "psst"})
            wa = await a.recv_obj()
            raw = a.last_raw
            check_event(wa, "whisper", **{"from": "alice", "to": "bob"}, text="psst")
            await b.recv_obj()
            assert b.last_raw == raw, (b.last_raw, raw)
            # a text recipient sees it as text
            await a.send({"type": "whisper", "to": "tex", "text": "hello tex"})
            check_event(await a.recv_obj(), "whisper", **{"from": "alice", "to": "tex"}, text="hello tex")
            await t.expect("[whisper from alice] hello tex")
            await t.send("/whisper alice back")
            await t.expect("[whisper to alice] back")
            check_event(await a.recv_obj(), "whisper", **{"from": "tex", "to": "alice"}, text="back")
            await c.expect_quiet()
            await b.expect_quiet()
    run(body(), srv)


def test_users_with_and_without_room(srv):
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("bob", "dev", history=False)
            await p.jjoin("Alice", "dev", history=False)
            await a.expect_obj("join")
            await p.join("carl", "ops")
            await a.send({"type": "users", "room": "DEV", "ref": 7})
            u = await a.expect_obj("users")
            assert list(u) == ["type", "room", "users", "ref"], u
            assert u["users"] == ["Alice", "bob"] and u["ref"] == 7 and u["room"].lower() == "dev", u
            await a.send({"type": "users"})
            u = await a.expect_obj("users")
            assert u == {"type": "users", "users": ["Alice", "bob", "carl"]}, u
            assert a.last_raw == '{"type":"users","users":["Alice","bob","carl"]}'
            await a.send({"type": "users", "room": "nowhere", "ref": "u"})
            await a.expect_error("no_such_room", ref="u")
            await a.send({"type": "rooms"})
            r = await a.expect_obj("rooms")
            assert r == {"type": "rooms", "rooms": [{"name": "dev", "users": 2}, {"name": "lobby", "users": 0},
                                                    {"name": "ops", "users": 1}]}, r
    run(body(), srv)


# ----------------------------------------------------------- chat errors

def test_chat_errors_echo_ref_and_keep_the_connection(start_server):
    s = start_server("--no-history", "--max-rooms", "2")

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", history=False)
            b = await p.jjoin("bob", history=False)
            await a.expect_obj("join")
            cases = [
                ({"type": "whisper", "to": "nobody", "text": "x", "ref": "w"}, "no_such_user", "w"),
                ({"type": "users", "room": "nowhere", "ref": 3}, "no_such_room", 3),
                ({"type": "message", "room": "ops", "text": "x", "ref": "m"}, "not_member", "m"),
                ({"type": "leave", "room": "ops", "ref": "l"}, "not_member", "l"),
                ({"type": "typing", "room": "ops", "ref": "t"}, "not_member", "t"),
                ({"type": "join", "room": "lobby", "ref": "j"}, "already_member", "j"),
                ({"type": "join", "room": "LOBBY"}, "already_member", None),
                ({"type": "nick", "name": "BOB", "ref": 0}, "name_taken", 0),
                ({"type": "nick", "name": "alice", "ref": "self"}, "name_taken", "self"),  # own name: nothing would change
            ]
            for req, code, ref in cases:
                await a.send(req)
                await a.expect_error(code, ref=ref)
            # a case change of one's own name is a rename
            await a.send({"type": "nick", "name": "Alice"})
            for c in (a, b):
                check_event(await c.recv_obj(), "nick", room="lobby", **{"from": "alice", "to": "Alice"})
            a.name = "Alice"
            await a.join_room("ops", history=False)           # 2 rooms: lobby and ops
            await a.send({"type": "join", "room": "dev", "ref": "x"})
            await a.expect_error("too_many_rooms", ref="x")
            # still open, and bob saw nothing of it: his next object is this line
            await a.send({"type": "message", "room": "lobby", "text": "after the errors"})
            check_event(await a.recv_obj(), "message", room="lobby", text="after the errors")
            check_event(await b.recv_obj(), "message", room="lobby", text="after the errors")
    run(body(), s)


@pytest.mark.parametrize("query,code,got_name,got_room", [
    ({"name": "bob"}, "name_taken", None, "lobby"),
    ({"name": "BOB", "room": "dev"}, "name_taken", None, "dev"),
    ({"name": "bad name!"}, "invalid_name", None, "lobby"),
    ({"name": "carol", "room": "bad room!"}, "invalid_room", "carol", "lobby"),
])
def test_connect_query_errors_come_after_the_welcome(srv, query, code, got_name, got_room):
    async def body():
        async with Pool(srv) as p:
            await p.jjoin("bob", history=False)
            c = await p.jopen(query.get("name"), query.get("room"))
            w = await c.expect_obj("welcome")
            if got_name is None:
                assert w["name"].startswith("guest-"), w
            else:
                assert w["name"] == got_name, w
            assert w["room"] == got_room and w["rooms"] == [got_room], w
            c.name = w["name"]
            # the error right after the welcome (no ref: none was sent)
            await c.expect_error(code)
            check_event(await c.recv_obj(), "join", room=got_room, name=w["name"])
            await c.send({"type": "message", "text": "ok"})
            check_event(await c.recv_obj(), "message", room=got_room, text="ok")
    run(body(), srv)


# -------------------------------------------------------- decoder errors

DEEP_OK = '{"type":"rooms","x":' + "[" * 15 + "]" * 15 + "}"          # 16 levels
DEEP_17 = '{"type":"rooms","x":' + "[" * 16 + "]" * 16 + "}"          # 17 levels
DEEP_HUGE = '{"type":"rooms","x":' + "[" * 200000 + "]" * 200000 + "}"

# (request as sent, code, ref echoed or None)
DECODER_CASES = [
    ("not json", "bad_json", None),
    ('{"type":"message","text":', "bad_json", None),
    ("", "bad_json", None),
    ("[1,2]", "bad_json", None),
    ('"message"', "bad_json", None),
    ("null", "bad_json", None),
    ('{"type":"rooms"} {"type":"rooms"}', "bad_json", None),
    ('{"type":"message","text":"a","text":"b"}', "bad_json", None),
    ('{"type":"rooms","ref":"d","type":"rooms"}', "bad_json", None),
    ('{"type":"rooms","x":{"a":1,"a":2}}', "bad_json", None),           # nested duplicate
    (b'{"type":"rooms"}', "bad_json", None),                          # binary message
    (DEEP_17, "bad_json", None),
    (DEEP_HUGE, "bad_json", None),
    ('{"type":"shout","text":"hey","ref":"s"}', "unknown_type", "s"),
    ('{"type":"Message","text":"hey","ref":5}', "unknown_type", 5),
    ('{"type":"","ref":"e"}', "unknown_type", "e"),
    ('{"text":"no type","ref":"n"}', "bad_field", "n"),
    ('{"type":5,"ref":"n"}', "bad_field", "n"),
    ('{"type":"message","ref":"m"}', "bad_field", "m"),                     # text missing
    ('{"type":"message","text":"","ref":"m"}', "bad_field", "m"),           # empty
    ('{"type":"message","text":5,"ref":"m"}', "bad_field", "m"),            # mistyped
    ('{"type":"message","text":"a\\u0000b","ref":"m"}', "bad_field", "m"),  # U+0000
    ('{"type":"message","text":"a","room":"","ref":"m"}', "bad_field", "m"),
    ('{"type":"message","text":"a","room":7,"ref":"m"}', "bad_field", "m"),
    ('{"type":"join","ref":"j"}', "bad_field", "j"),
    ('{"type":"join","room":"dev","since":-1,"ref":"j"}', "bad_field", "j"),
    ('{"type":"join","room":"dev","since":1.0,"ref":"j"}', "bad_field", "j"),
    ('{"type":"join","room":"dev","since":1e3,"ref":"j"}', "bad_field", "j"),
    ('{"type":"join","room":"dev","since":9007199254740992,"ref":"j"}', "bad_field", "j"),
    ('{"type":"join","room":"dev","since":"5","ref":"j"}', "bad_field", "j"),
    ('{"type":"join","room":"dev","epoch":"","ref":"j"}', "bad_field", "j"),
    ('{"type":"join","room":"dev","epoch":5,"ref":"j"}', "bad_field", "j"),
    ('{"type":"nick","ref":"k"}', "bad_field", "k"),
    ('{"type":"nick","name":"","ref":"k"}', "bad_field", "k"),
    ('{"type":"whisper","to":"bob","ref":"w"}', "bad_field", "w"),
    ('{"type":"whisper","text":"x","ref":"w"}', "bad_field", "w"),
    ('{"type":"history","room":"lobby","ref":"h"}', "bad_field", "h"),
    ('{"type":"history","room":"lobby","limit":0,"ref":"h"}', "bad_field", "h"),
    ('{"type":"history","room":"lobby","limit":501,"ref":"h"}', "bad_field", "h"),
    ('{"type":"history","room":"lobby","limit":"5","ref":"h"}', "bad_field", "h"),
    ('{"type":"history","room":"lobby","limit":5,"before":-1,"ref":"h"}', "bad_field", "h"),
    ('{"type":"history","room":"lobby","limit":5,"before":2.5,"ref":"h"}', "bad_field", "h"),
    ('{"type":"typing","ref":"t"}', "bad_field", "t"),
    ('{"type":"rooms","ref":[1]}', "bad_field", None),
    ('{"type":"rooms","ref":true}', "bad_field", None),
    ('{"type":"rooms","ref":{"a":1}}', "bad_field", None),
    ('{"type":"message","text":"%s","ref":"m"}' % ("x" * 65537), "too_long", "m"),
    ('{"type":"whisper","to":"bob","text":"%s","ref":"w"}' % ("y" * 65537), "too_long", "w"),
    ('{"type":"rooms","ref":"%s"}' % ("r" * 65), "too_long", None),
    ('{"type":"join","room":"dev","epoch":"%s","ref":"j"}' % ("e" * 65), "too_long", "j"),
    ('{"type":"nick","name":"bad name","ref":"k"}', "invalid_name", "k"),
    ('{"type":"nick","name":"%s","ref":"k"}' % ("n" * 33), "invalid_name", "k"),
    ('{"type":"nick","name":"dots.not.ok","ref":"k"}', "invalid_name", "k"),
    ('{"type":"whisper","to":"b!b","text":"x","ref":"w"}', "invalid_name", "w"),
    ('{"type":"join","room":"bad room","ref":"j"}', "invalid_room", "j"),
    ('{"type":"join","room":"%s","ref":"j"}' % ("r" * 65), "invalid_room", "j"),
    ('{"type":"message","text":"x","room":"a/b","ref":"m"}', "invalid_room", "m"),
    ('{"type":"users","room":"#dev","ref":"u"}', "invalid_room", "u"),
    ('{"type":"history","room":"a b","limit":5,"ref":"h"}', "invalid_room", "h"),
    ('{"type":"typing","room":"\\u00e9","ref":"t"}', "invalid_room", "t"),
]


@pytest.mark.parametrize("req,code,ref", DECODER_CASES,
                         ids=["%d-%s" % (i, c[1]) for i, c in enumerate(DECODER_CASES)])
def test_decoder_error(srv, req, code, ref):
    """Each bad request gets its error code (ref echoed when readable); the
    connection stays open and the other member sees nothing: his next
    object is the sender's next good line."""
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("alice", history=False)
            b = await p.jjoin("bob", history=False)
            await a.expect_obj("join")
            await a.send(req)
            await a.expect_error(code, ref=ref)
            await a.send({"type": "message", "text": "still open"})
            for c in (a, b):
                check_event(await c.recv_obj(), "message", room="lobby", **{"from": "alice"}, text="still open")
    run(body(), srv)


def test_limits_that_pass(srv):
    """The edges that are still valid: 16 levels of nesting, a 64-byte ref,
    a 32-byte name, a 64-byte room, since and before at 2^53 - 1, a limit
    of 500 (on a server without history: unavailable, not bad_field)."""
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("alice", history=False)
            await a.send(DEEP_OK)
            assert (await a.expect_obj("rooms"))["rooms"] == [{"name": "lobby", "users": 1}]
            # brackets inside a string are not nesting
            text = '\\"[{' * 40
            await a.send({"type": "message", "text": text})
            check_event(await a.recv_obj(), "message", text=text)
            await a.send({"type": "rooms", "ref": 0.5})
            assert (await a.expect_obj("rooms"))["ref"] == 0.5
            ref = "r" * 64
            await a.send({"type": "rooms", "ref": ref})
            assert (await a.expect_obj("rooms"))["ref"] == ref
            await a.send({"type": "users", "ref": -12})
            assert (await a.expect_obj("users"))["ref"] == -12
            await a.send({"type": "nick", "name": "N" * 32})
            check_event(await a.recv_obj(), "nick", **{"from": "alice", "to": "N" * 32})
            a.name = "N" * 32
            room = "r." * 32
            _, ev = await a.join_room(room, history=False, since=2 ** 53 - 1, epoch="e" * 64)
            await a.send({"type": "history", "room": room, "limit": 500, "before": 2 ** 53 - 1, "ref": "h"})
            await a.expect_error("unavailable", ref="h")
    run(body(), srv)


# ---------------------------------------------------------------- typing

def test_typing_reaches_other_json_members_once_per_3s(srv):
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("alice", "dev", history=False)
            b = await p.jjoin("bob", "dev", history=False)
            await a.expect_obj("join")
            t = await p.join("tex", "dev")
            for c in (a, b):
                await c.expect_obj("join")
            await a.send({"type": "typing", "room": "dev"})
            ty = await b.recv_obj()
            assert ty == {"type": "typing", "room": "dev", "from": "alice"}, ty
            assert b.last_raw == '{"type":"typing","room":"dev","from":"alice"}'
            await a.send({"type": "typing", "room": "dev", "ref": "again"})   # within 3 s: dropped, no error
            await a.send({"type": "typing", "room": "dev"})
            await a.send({"type": "message", "text": "sentinel"})
            # the sender gets no typing and no error; bob nothing more; tex no typing at all
            for c in (a, b):
                check_event(await c.recv_obj(), "message", room="dev", text="sentinel")
            await t.expect("[dev] alice: sentinel")
            # another client, another room: not limited by alice's dev typing
            await b.send({"type": "typing", "room": "dev"})
            assert await a.recv_obj() == {"type": "typing", "room": "dev", "from": "bob"}
            await a.join_room("ops", history=False)
            await b.join_room("ops", history=False)
            await a.expect_obj("join")
            await a.send({"type": "typing", "room": "ops"})
            assert await b.recv_obj() == {"type": "typing", "room": "ops", "from": "alice"}
            await t.expect_quiet()
            # after 3 s alice may type in dev again
            await asyncio.sleep(3.1)
            await a.send({"type": "typing", "room": "dev"})
            assert await b.recv_obj() == {"type": "typing", "room": "dev", "from": "alice"}
            await t.expect_quiet()
    run(body(), srv, timeout=15)


# ------------------------------------------------- text and JSON together

def test_json_and_text_clients_see_the_same_sequence(srv):
    async def body():
        async with Pool(srv) as p:
            j = await p.jjoin("jay", "dev", history=False)
            t = await p.join("tex", "dev")
            check_event(await j.recv_obj(), "join", room="dev", name="tex")
            j2 = await p.jjoin("jo", "dev", history=False)
            t2 = await p.join("tim", "dev")
            n = 40

            async def talk_json(c, tag):
                for i in range(n):
                    await c.send({"type": "message", "text": "%s %d" % (tag, i)})
                    await asyncio.sleep(0)

            async def talk_text(c, tag):
                for i in range(n):
                    await c.send("%s %d" % (tag, i))
                    await asyncio.sleep(0)

            await asyncio.gather(talk_json(j, "from jay"), talk_text(t, "from tex"),
                                 talk_json(j2, "from jo"), talk_text(t2, "from tim"))
            await t.send("/me is done")
            # both saw jo's and tim's joins, 4n lines and the /me; jay then tex's leave
            total = 2 + 4 * n + 1
            tseq = await t.recv_n(total)
            await t.send("/quit bye")
            jseq = [await j.recv_obj() for _ in range(total + 1)]
            ids = [e["id"] for e in jseq]
            assert ids == sorted(set(ids)), "ids not increasing: %r" % ids
            jtext = [as_text_line(e) for e in jseq]
            assert jtext[:-1] == tseq, "JSON and text views differ"
            assert jtext[-1] == "* tex left #dev (bye)"
            assert sum(1 for e in jseq if e["type"] == "message") == 4 * n + 1
    run(body(), srv, timeout=20)


def test_control_characters_json_and_text(srv):
    async def body():
        async with Pool(srv) as p:
            j = await p.jjoin("jay", "dev", history=False)
            t = await p.join("tex", "dev")
            await j.expect_obj("join")
            await j.send({"type": "message", "text": "two\nlines\ttab"})
            check_event(await j.recv_obj(), "message", text="two\nlines\ttab")
            await t.expect("[dev] jay: two lines tab")
    run(body(), srv)


def test_a_client_in_two_rooms_leaves_both_when_it_goes(srv):
    async def body():
        async with Pool(srv) as p:
            a = await p.jjoin("alice", "dev", history=False)
            await a.join_room("ops", history=False)
            b = await p.jjoin("bob", "dev", history=False)
            await b.join_room("ops", history=False)
            await p.join("tex", "dev")
            check_event(await b.recv_obj(), "join", name="tex")
            await b.send({"type": "users", "ref": "all"})
            u = await b.expect_obj("users")
            assert u["users"] == ["alice", "bob", "tex"], u          # once each, however many rooms
            await a.close()
            evs = [await b.recv_obj(), await b.recv_obj()]
            for e in evs:
                check_event(e, "leave", name="alice")
            assert sorted(e["room"] for e in evs) == ["dev", "ops"], evs
            await b.send({"type": "rooms"})
            assert (await b.expect_obj("rooms"))["rooms"] == [
                {"name": "dev", "users": 2}, {"name": "lobby", "users": 0}, {"name": "ops", "users": 1}]
    run(body(), srv)
