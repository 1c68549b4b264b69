"""Flood control (issue 10, defect 6 and "Flooding").

Every client has a token bucket for its messages (--rate a second, --burst
at once; default 20 and 40; --rate 0 turns flood control off) and tighter
ones for changes of room (2 a second, 10 at once), of name (1, 3) and
whispers (5, 10). A message over it is dropped: a text client gets
"! slow down" once (not once per dropped line: again only after a message
got through), a JSON client an error rate_limited. A client that keeps
going is closed with 1008 "rate limit": on its third warning within 10 s,
or after 5 bursts refused since its last warning. /quit always goes
through. Everyone else is unaffected.
"""
import asyncio
import json

from chatclient import Clients, run, say

JSON = ["wschat.v1.json"]


async def lines_until(client, last):
    """What client receives up to and including the line last."""
    got = []
    while True:
        line = await client.recv()
        got.append(line)
        if line == last:
            return got


def test_flood_is_cut_to_the_burst_with_one_warning(start_server):
    server = start_server("--rate", "1", "--burst", "5")

    async def body():
        async with Clients(server) as c:
            alice, bob = await c.room(["alice", "bob"])
            for i in range(20):
                await alice.send("flood %d" % i)
            await asyncio.sleep(1.2)                 # one token back
            await alice.send("after")
            want = ["[lobby] alice: flood %d" % i for i in range(5)] + ["[lobby] alice: after"]
            assert await lines_until(bob, want[-1]) == want
            got = await lines_until(alice, want[-1])
            assert got == want[:5] + ["! slow down"] + want[5:], got
    run(body(), server)


def test_the_default_rate_cuts_a_flood_that_would_have_passed(chat_server):
    """The attack of defect 6: thousands of lines as fast as the socket
    takes them all reached the room. Now a burst (40) does, and the sender
    is warned, then closed; bob, who only reads, gets a bounded amount."""
    async def body():
        async with Clients(chat_server) as c:
            alice, bob, carol = await c.room(["alice", "bob", "carol"])
            for i in range(1000):
                await alice.send("flood %d" % i)
            got = []
            while True:
                line = await bob.recv()
                if line == "* alice left #lobby":
                    break
                got.append(line)
            assert 40 <= len(got) <= 60, len(got)
            assert got == ["[lobby] alice: flood %d" % i for i in range(len(got))]
            await alice.expect_closed(1008, max_messages=100)
            assert alice.ws.close_reason == "rate limit"
            await carol.recv_n(len(got) + 1)
            await say(bob, "still fine", carol)
    run(body(), chat_server)


def test_keeping_on_after_five_bursts_closes_1008(start_server):
    server = start_server("--rate", "1", "--burst", "5")

    async def body():
        async with Clients(server) as c:
            alice, bob = await c.room(["alice", "bob"])
            for i in range(40):
                await alice.send("flood %d" % i)
            before = await alice.expect_closed(1008, max_messages=50)
            assert before == ["[lobby] alice: flood %d" % i for i in range(5)] + ["! slow down"], before
            got = await bob.recv_n(6)
            assert got == ["[lobby] alice: flood %d" % i for i in range(5)] + ["* alice left #lobby"]
            await say(bob, "sentinel")
    run(body(), server)


def test_third_warning_within_ten_seconds_closes_1008(start_server):
    server = start_server("--rate", "10", "--burst", "2")

    async def body():
        async with Clients(server) as c:
            alice, bob = await c.room(["alice", "bob"])
            for round_ in range(2):
                for i in range(3):
                    await alice.send("r%d %d" % (round_, i))
                await asyncio.sleep(0.25)            # two tokens back
            for i in range(3):
                await alice.send("r2 %d" % i)
            before = await alice.expect_closed(1008, max_messages=20)
            assert before.count("! slow down") == 2, before
            await bob.recv_n(6)                      # 2 + 2 + 2 lines
            await bob.expect("* alice left #lobby")
    run(body(), server)


def test_quit_goes_through_while_limited(start_server):
    server = start_server("--rate", "1", "--burst", "2")

    async def body():
        async with Clients(server) as c:
            alice, bob = await c.room(["alice", "bob"])
            for i in range(4):
                await alice.send("x%d" % i)
            await alice.send("/quit bye")
            await alice.expect_closed(1000)
            assert await bob.recv_n(3) == ["[lobby] alice: x0", "[lobby] alice: x1",
                                          "* alice left #lobby (bye)"]
    run(body(), server)


def test_joins_nicks_and_whispers_have_tighter_buckets(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            for i in range(4):
                await alice.send("/nick a%d" % i)
            want = ["* alice is now known as a0", "* a0 is now known as a1", "* a1 is now known as a2"]
            assert await alice.recv_n(4) == want + ["! slow down"]
            assert await bob.recv_n(3) == want
            for i in range(11):
                await bob.send("/w a2 psst %d" % i)
            got = await bob.recv_n(11)
            assert got == ["[whisper to a2] psst %d" % i for i in range(10)] + ["! slow down"], got
            assert await alice.recv_n(10) == ["[whisper from bob] psst %d" % i for i in range(10)]
            for i in range(11):
                await bob.send("/join r%d" % i)
            got = await bob.recv_n(11)
            assert got == ["* bob joined #r%d" % i for i in range(10)] + ["! slow down"], got
            await alice.expect("* bob left #lobby")
            await bob.send("plain lines still pass")
            await bob.expect("[r9] bob: plain lines still pass")
    run(body(), chat_server)


def test_json_clients_get_rate_limited(start_server):
    server = start_server("--rate", "1", "--burst", "3")

    async def body():
        async with Clients(server) as c:
            js = await c.open("js", subprotocols=JSON)
            assert json.loads(await js.recv())["type"] == "welcome"
            assert json.loads(await js.recv())["type"] == "join"
            for i in range(6):
                await js.send(json.dumps({"type": "message", "text": "m%d" % i, "ref": i}))
            got = [json.loads(await js.recv()) for _ in range(4)]
            assert [g["type"] for g in got] == ["message"] * 3 + ["error"], got
            assert got[3]["code"] == "rate_limited" and "ref" not in got[3], got[3]
            await asyncio.sleep(1.1)
            await js.send(json.dumps({"type": "message", "text": "later"}))
            assert json.loads(await js.recv())["text"] == "later"
    run(body(), server)


def test_json_nick_bucket_echoes_the_ref(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            js = await c.open("js", subprotocols=JSON)
            assert json.loads(await js.recv())["type"] == "welcome"
            assert json.loads(await js.recv())["type"] == "join"
            for i in range(4):
                await js.send(json.dumps({"type": "nick", "name": "n%d" % i, "ref": "n%d" % i}))
            got = [json.loads(await js.recv()) for _ in range(4)]
            assert [g["type"] for g in got] == ["nick"] * 3 + ["error"], got
            assert got[3]["code"] == "rate_limited" and got[3]["ref"] == "n3", got[3]
    run(body(), chat_server)


def test_rate_0_turns_flood_control_off(start_server):
    server = start_server("--rate", "0")

    async def body():
        async with Clients(server) as c:
            alice, bob = await c.room(["alice", "bob"])
            for i in range(500):
                await alice.send("l%d" % i)
            assert await bob.recv_n(500) == ["[lobby] alice: l%d" % i for i in range(500)]
            for i in range(20):
                await alice.send("/nick a%d" % i)
            got = await bob.recv_n(20)
            assert got[-1] == "* a18 is now known as a19", got
    run(body(), server)
