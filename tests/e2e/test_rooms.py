"""Rooms as the events issue changed them, seen through chat-cli: quiet
rooms (--quiet-room: above N members joins and leaves are not announced to
everyone, the joiner still gets its welcome or its own join line, /users
stays exact), lobby always listed, flags that configure them, and the
kick reason path through /quit."""
import asyncio

import pytest

from chatclient import Clients, run, say


def test_quiet_room_announces_joins_only_up_to_the_limit(start_server):
    srv = start_server("--quiet-room", "3")

    async def body():
        async with Clients(srv) as c:
            a, b, d = await c.room(["a", "b", "d"])  # 3 members: announced
            e = await c.join("e")                   # the 4th: the room is quiet
            for m in (a, b, d):
                await m.expect_quiet()
            f = await c.join("f")
            for m in (a, b, d, e):
                await m.expect_quiet()
            # a line still reaches all five, /users is exact
            await say(a, "hello quiet room", b, d, e, f)
            await f.send("/users")
            await f.expect("* users in #lobby: a, b, d, e, f")
            await f.send("/rooms")
            await f.expect("* rooms: lobby (5)")
            # leaving a room above the limit is not announced either
            await f.send("/join elsewhere")
            await f.expect("* f joined #elsewhere")  # the mover sees its own join
            for m in (a, b, d, e):
                await m.expect_quiet()
            # back at 4 members: still quiet (4 > 3); at 3 announced again
            await e.close()
            for m in (a, b, d):
                await m.expect_quiet()
            await d.send("/quit bye")
            await d.expect_closed(1000)
            for m in (a, b):
                await m.expect("* d left #lobby (bye)")
            await say(b, "three left", a)
    run(body(), srv, timeout=20)


def test_quiet_room_moving_into_it(start_server):
    srv = start_server("--quiet-room", "2")

    async def body():
        async with Clients(srv) as c:
            a, b = await c.room(["a", "b"], room="big")
            d = await c.join("d")
            await d.send("/join big")
            await d.expect("* d joined #big")      # its own join, not the others'
            d.room = "big"
            await a.expect_quiet()
            await b.expect_quiet()
            await say(d, "here", a, b)
    run(body(), srv, timeout=20)


def test_quiet_room_zero_means_always_announce(start_server):
    srv = start_server("--quiet-room", "0")

    async def body():
        async with Clients(srv) as c:
            await c.room(["u%d" % i for i in range(8)])  # every join checked
    run(body(), srv, timeout=20)


def test_lobby_is_always_listed(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            a = await c.join("a", "dev")
            await a.send("/rooms")
            await a.expect("* rooms: dev (1), lobby (0)")
    run(body(), chat_server)


@pytest.mark.parametrize("flag,value", [("--quiet-room", "-1"), ("--quiet-room", "x"),
                                        ("--max-rooms", "0"), ("--max-rooms", "1001")])
def test_room_flags_refuse_bad_values(flag, value):
    import subprocess
    from conftest import CLI
    p = subprocess.run([CLI, "--port", "0", flag, value], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stderr.startswith("chat-cli: ") and p.stderr.count("\n") == 1, p.stderr
