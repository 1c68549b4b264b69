"""Many clients at once: lines sent at the same instant all reach everyone,
in one order that every member sees identically; 50+ clients chat."""
import asyncio

import pytest

from chatclient import Clients, RawClient, run, say


@pytest.fixture
def chat_server(start_server):
    """These tests measure load, not floods: no flood control (--rate 0),
    as in bench/run; test_chat_flood.py tests the limit."""
    return start_server("--rate", "0")


async def fire(clients, lines_each, tag=""):
    """Every client sends lines_each lines at the same instant while all of
    them read; returns what each one received (in order), and the lines sent."""
    go = asyncio.Event()
    sent = {c.name: ["%s%s #%03d" % (tag, c.name, i) for i in range(lines_each)] for c in clients}
    total = len(clients) * lines_each

    async def send_all(c):
        await go.wait()
        for text in sent[c.name]:
            await c.send(text)

    async def read_all(c):
        return await c.recv_n(total)

    readers = [asyncio.ensure_future(read_all(c)) for c in clients]
    senders = [asyncio.ensure_future(send_all(c)) for c in clients]
    await asyncio.sleep(0.01)
    go.set()
    await asyncio.gather(*senders)
    return await asyncio.gather(*readers), sent


def check_same_order(clients, received, sent, room="lobby"):
    expected = sorted("[%s] %s: %s" % (room, n, t) for n, texts in sent.items() for t in texts)
    first = received[0]
    for c, got in zip(clients, received):
        assert sorted(got) == expected, "%s missed or duplicated lines" % c.name
        if got != first:
            i = next(i for i, (a, b) in enumerate(zip(got, first)) if a != b)
            raise AssertionError("%s and %s saw different orders: at %d, %r vs %r" % (
                c.name, clients[0].name, i, got[i], first[i]))
    for n, texts in sent.items():   # each sender's lines keep their own order
        mine = [l for l in first if l.startswith("[%s] %s: " % (room, n))]
        assert mine == ["[%s] %s: %s" % (room, n, t) for t in texts], "%s's lines were reordered" % n


def test_simultaneous_senders_same_order_for_everyone(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            clients = await c.room(["u%d" % i for i in range(10)])
            received, sent = await fire(clients, 40)
            check_same_order(clients, received, sent)
            await say(clients[0], "sentinel", *clients[1:])   # nothing extra arrived
    run(body(), chat_server)


def test_two_clients_same_instant(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            clients = await c.room(["alice", "bob", "carol"])
            for round_ in range(20):
                a, b = clients[0], clients[1]
                await asyncio.gather(a.send("a%d" % round_), b.send("b%d" % round_))
                got = [await u.recv_n(2) for u in clients]
                assert sorted(got[0]) == ["[lobby] alice: a%d" % round_, "[lobby] bob: b%d" % round_], got[0]
                assert got[1] == got[0] and got[2] == got[0], got
    run(body(), chat_server)


def test_concurrent_rooms_do_not_mix(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            lobby = await c.room(["l%d" % i for i in range(5)])
            dev = await c.room(["d%d" % i for i in range(5)], "dev")
            (rl, sl), (rd, sd) = await asyncio.gather(fire(lobby, 30), fire(dev, 30))
            check_same_order(lobby, rl, sl, "lobby")
            check_same_order(dev, rd, sd, "dev")
    run(body(), chat_server)


def test_sixty_clients_chat(chat_server):
    n = 60

    async def body():
        async with Clients(chat_server) as c:
            names = ["user%02d" % i for i in range(n)]
            clients = await c.room(names)
            await clients[0].send("/users")
            await clients[0].expect("* users in #lobby: " + ", ".join(names))
            await clients[0].send("/rooms")
            await clients[0].expect("* rooms: lobby (%d)" % n)
            received, sent = await fire(clients, 3)
            check_same_order(clients, received, sent)
            # ten leave abruptly or politely; each of the other fifty is told once per leaver
            gone, stay = clients[:10], clients[10:]
            for i, g in enumerate(gone):
                if i % 2:
                    g.ws.transport.abort()
                else:
                    await g.close()
            expected = sorted("* %s left #lobby" % g.name for g in gone)
            for u in stay:
                assert sorted(await u.recv_n(10)) == expected, u.name
            await say(stay[0], "fifty remain", *stay[1:])
            await stay[0].send("/rooms")
            await stay[0].expect("* rooms: lobby (%d)" % (n - 10))
            assert chat_server.alive()
    run(body(), chat_server)


def test_chatting_while_others_come_and_go_abruptly(chat_server):
    """Ten chatters fire lines while twenty raw clients join and reset: every
    chatter sees the same lines in the same order, and each visitor's join
    and leave exactly once, join first."""
    async def body():
        async with Clients(chat_server) as c:
            chatters = await c.room(["c%d" % i for i in range(10)])
            visitors = ["v%02d" % i for i in range(20)]
            lines_each = 20
            total = 10 * lines_each + 2 * len(visitors)
            go = asyncio.Event()

            async def chat(u):
                await go.wait()
                for i in range(lines_each):
                    await u.send("%s #%02d" % (u.name, i))

            async def visit():
                await go.wait()
                for v in visitors:
                    raw = await RawClient.connect(chat_server, v)
                    raw.abort()
                    await asyncio.sleep(0.005)

            readers = [asyncio.ensure_future(u.recv_n(total)) for u in chatters]
            tasks = [asyncio.ensure_future(chat(u)) for u in chatters] + [asyncio.ensure_future(visit())]
            go.set()
            await asyncio.gather(*tasks)
            received = await asyncio.gather(*readers)
            lines = [[m for m in got if m.startswith("[")] for got in received]
            sent = {u.name: ["%s #%02d" % (u.name, i) for i in range(lines_each)] for u in chatters}
            check_same_order(chatters, lines, sent)
            for u, got in zip(chatters, received):
                notices = [m for m in got if not m.startswith("[")]
                for v in visitors:
                    mine = [m for m in notices if m.startswith("* %s " % v)]
                    assert mine == ["* %s joined #lobby" % v, "* %s left #lobby" % v], (u.name, v, mine)
            await say(chatters[0], "sentinel", *chatters[1:])
    run(body(), chat_server)
