"""Cluster mode (issue 11): three chat-cli nodes on one real redis-server
behave as one chat.

Each test starts Debian's redis-server on a free loopback port with no
persistence (redisserver.py) and three chat-cli nodes with
`--redis redis://127.0.0.1:PORT`, each on a free port of its own, then
talks to them with the real clients of the other suites (text: chatclient,
JSON: jsonclient), as the issue's "What it does" and "Proof" say:

- clients on different nodes chat in one room and all see one order
  (several senders at once on different nodes, text and JSON receivers
  compared whole); nothing twice, the sender's own node delivers once;
  JSON ids cluster-wide and strictly increasing;
- join and leave notices reach other nodes' members once;
- whispers across nodes, and to a name nobody has (an error);
- `/users *`, `/users`, `/rooms` (and JSON `users`, `rooms`) list the
  members of every node;
- a name taken on one node cannot be taken on another (`/nick`, `?name=`,
  JSON `nick`), guest names are unique cluster-wide, and a name is free
  again on another node once its holder leaves;
- history: what was said on one node is replayed to a joiner on another,
  and recovery with `since`/`epoch` on another node returns exactly what
  was missed, `complete: true`;
- SIGKILL of a node: each of its members leaves each room once, within the
  stated bound, and vanishes from `/users *`; SIGTERM of a node: the same
  for the members of other nodes, and the names are free;
- a node listens to a room's channel only while it has members there;
  `redis://HOST:PORT/DB`: two databases of one Redis are two chats; the
  config file's `redis` key; clients of nodes that just started;
- a Redis restart in the middle of traffic: local members keep being
  served, traffic across nodes flows again, nothing is delivered twice,
  recovery across the outage says `complete: false` when anything is
  missing, and /metrics tells of the outage;
- every node is still alive and answering at the end of every test (and
  exits cleanly on SIGTERM); without `--redis` nothing is shared and
  nothing connects to Redis.

On a chat-cli without cluster mode these tests fail with an assertion
(the nodes do not start: "unknown option --redis"), never a skip.
"""
import asyncio
import re
import signal
import time


from chatclient import GUEST_RE, parse_welcome, run
from jsonclient import HISTORY_PREFIX, Pool, as_text_line, check_event, live_of, parse
from redisserver import redis, start_node  # noqa: F401 (fixtures)

# The time within which a SIGKILLed node's members are gone from every
# other node: docs/CLUSTER.md states 4 s (a 3 s TTL, a check every second);
# plus 1 s for a loaded machine or a sanitizer build.
PRESENCE_BOUND = 4.0 + 1.0
# The time within which traffic flows across nodes again after Redis is back.
RECONNECT_BOUND = 10.0
# Presence and the name registry live in Redis: what one node did may reach
# another a moment later. Lists are asked again until they match, this long.
SETTLE = 3.0

# With --redis, history lives in Redis unless --no-history (docs/CLUSTER.md):
# the nodes that keep history get no --history FILE, only the replay's size
# (which also keeps conftest.Server from adding --no-history).
CLUSTER_HISTORY = ["--history-replay", "50"]

# The cluster's series in /metrics (docs/CLUSTER.md).
UP = "wschat_cluster_up"                           # 1 while Redis is reachable
RECONNECTS = "wschat_cluster_reconnects_total"
OUTAGE = "wschat_cluster_outage_seconds_total"


class ClusterPool(Pool):
    """jsonclient.Pool over several nodes: pool.on(node) opens clients on
    that node; every client of every node is closed on exit."""

    def on(self, node):
        view = Pool(node)
        view.all = self.all
        return view


def cluster_up(server):
    """The node's /metrics gauge: 1 while it is connected to Redis."""
    from test_metrics import scrape
    return scrape(server).samples.get((UP, ()))


def wait_up(servers, bound=5.0):
    """Waits (bounded) until each node says it is connected to Redis."""
    deadline = time.monotonic() + bound
    for s in servers:
        while cluster_up(s) != 1:
            assert time.monotonic() < deadline, "node %d: %s is %r after %.0f s" % (s.port, UP, cluster_up(s), bound)
            time.sleep(0.01)


def nodes(start_node, redis, n=3, history=False, extra=(), ready=True):
    """n chat-cli nodes on redis, each on its own free port (and in its
    own directory); with history, the cluster's (in Redis). ready: once
    each says (in /metrics) it is connected to Redis, as a load balancer's
    health check would wait; test_clients_of_nodes_that_just_started
    checks the moment before."""
    out = []
    for i in range(n):
        args = list(extra)
        if history:
            args += CLUSTER_HISTORY
        out.append(start_node(redis, *args))
    ports = {s.port for s in out}
    assert len(ports) == n, "nodes share a port: %r" % (ports,)
    if ready:
        wait_up(out)
    return out


async def all_answer(servers):
    """Every server is alive and answers a new client with its welcome."""
    for s in servers:
        assert s.alive(), "node on port %d died: %s" % (s.port, s.stderr_text()[-3000:])
        async with Pool(s) as p:
            c = await p.open()
            name, _ = parse_welcome(await c.recv())
            assert GUEST_RE.match(name), name


def finish(body, servers, timeout=30.0):
    """Runs body (bounded), checks every node still answers, then that
    each exits cleanly on SIGTERM."""
    servers = list(dict.fromkeys(servers))
    async def _all():
        await body
        await all_answer(servers)
    run(_all(), *servers, timeout=timeout)


async def eventually(ask, want, what, bound=SETTLE):
    """Calls ask() (a coroutine returning a reply) until it returns want,
    at most bound seconds; fails with the last reply."""
    deadline = time.monotonic() + bound
    got = None
    while True:
        got = await ask()
        if got == want:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("%s: got %r, expected %r (for %.1f s)" % (what, got, want, bound))
        await asyncio.sleep(0.1)


def text_ask(client, line):
    async def _ask():
        await client.send(line)
        return await client.recv()
    return _ask


def json_ask(client, req):
    async def _ask():
        await client.send(req)
        obj = await client.recv_obj()
        obj.pop("ref", None)
        return obj
    return _ask


async def room_across(pool, spec, history=False):
    """spec: [(node, name, room, "text"|"json")], joined one by one; every
    member already in the room is checked to be told of each later one
    (across nodes), so everyone is subscribed before anything is said.
    history: the nodes keep history (JSON joiners get a history object)."""
    members = []
    for node, name, room, kind in spec:
        if kind == "text":
            c = await pool.on(node).join(name, room)
        else:
            c = await pool.on(node).jjoin(name, room, history=history)
        for m in members:
            if m.room != room:
                continue
            if hasattr(m, "recv_obj"):
                check_event(await m.recv_obj(), "join", room=room, name=name)
            else:
                await m.expect("* %s joined #%s" % (name, room))
        members.append(c)
    return members


# ------------------------------------------------------------- start, and without --redis

def test_nodes_start_with_redis_and_connect_to_it(redis, start_node):
    ns = nodes(start_node, redis)
    # each node holds at least one connection to Redis (pub/sub and commands)
    deadline = time.monotonic() + SETTLE
    while len(redis.clients()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(redis.clients()) >= 3, "Redis sees %r" % (redis.clients(),)
    finish(all_answer(ns), ns)


def test_without_redis_nothing_is_shared_and_nothing_connects(redis, start_node):
    a_node = start_node(None)
    b_node = start_node(None)

    async def body():
        async with ClusterPool(a_node) as p:
            a = await p.on(a_node).join("alice")
            b = await p.on(b_node).join("alice")      # another server: the name is free there
            await a.send("hello")
            await a.expect("[lobby] alice: hello")
            await b.expect_quiet()
            await a.send("/users *")
            await a.expect("* users: alice (#lobby)")
    from test_metrics import scrape
    assert not _redis_series(scrape(a_node)), "cluster series in /metrics without --redis"
    run(body(), a_node, b_node)
    assert redis.clients() == [], "a node without --redis connected to Redis: %r" % (redis.clients(),)


def test_help_lists_the_redis_flag():
    import subprocess
    from conftest import CLI
    out = subprocess.run([CLI, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert re.search(r"^\s*--redis\b", out.stdout, re.M), "chat-cli --help has no --redis flag"


def test_bad_redis_url_is_a_clear_error(redis, start_node):
    import subprocess
    from conftest import CLI
    good = start_node(redis)          # a good URL starts a node
    wait_up([good])
    good.stop()
    out = subprocess.run([CLI, "--port", "0", "--no-history", "--redis", "http://127.0.0.1:1/"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode != 0, "chat-cli accepted --redis http://...: %s" % out.stdout
    assert "redis" in out.stderr.lower(), "the error does not name --redis: %r" % out.stderr


def test_the_config_file_key_redis_joins_the_cluster(redis, start_node, tmp_path):
    conf = tmp_path / "node.ini"
    conf.write_text("redis = %s\n" % redis.url)
    n1 = start_node(redis)
    n2 = start_node(None, "--config", str(conf))
    wait_up([n1, n2])

    async def body():
        async with ClusterPool(n1) as p:
            a, b = await room_across(p, [(n1, "alice", "dev", "text"), (n2, "bob", "dev", "text")])
            await b.send("hi")
            for c in (a, b):
                await c.expect("[dev] bob: hi")
    finish(body(), [n1, n2])


def test_two_databases_of_one_redis_are_two_chats(redis, start_node):
    # redis://HOST:PORT/DB: nodes on /1 and nodes on /2 share one Redis
    # (whose pub/sub channels are not per database) but not one chat
    a1, a2 = start_node(redis.url + "/1"), start_node(redis.url + "/1")
    b1 = start_node(redis.url + "/2")
    wait_up([a1, a2, b1])

    async def body():
        async with ClusterPool(a1) as p:
            x, y = await room_across(p, [(a1, "alice", "dev", "text"), (a2, "bob", "dev", "text")])
            z = await p.on(b1).join("alice", "dev")          # the name is free in the other chat
            await x.send("on one")
            for c in (x, y):
                await c.expect("[dev] alice: on one")
            await z.send("on two")
            await z.expect("[dev] alice: on two")
            await eventually(text_ask(y, "/users *"), "* users: alice (#dev), bob (#dev)", "/users * of /1")
            await eventually(text_ask(z, "/users *"), "* users: alice (#dev)", "/users * of /2")
            for c in (x, y, z):
                await c.expect_quiet(0.3)
    finish(body(), [a1, a2, b1])
    keys = redis.info("keyspace")
    assert "db0" not in keys and "db1" in keys and "db2" in keys, "keys per database: %r" % (keys,)


def test_a_node_subscribes_to_a_room_while_it_has_members_in_it(redis, start_node):
    # the room's channel: while a node has local members in the room it
    # listens to it, and not once the last one has left
    n1, n2, n3 = ns = nodes(start_node, redis)
    room = "subzq7"

    def listeners():
        chans = [c for c in redis.command("PUBSUB", "CHANNELS", "*") if room in c.lower()]
        assert len(chans) <= 1, "more than one channel names the room: %r" % (chans,)
        if not chans:
            return 0
        return redis.command("PUBSUB", "NUMSUB", chans[0])[1]

    def settle(want, what):
        deadline = time.monotonic() + SETTLE
        while listeners() != want and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listeners() == want, "%s: %d nodes listen to #%s's channel, expected %d (channels %r)" % (
            what, listeners(), room, want, redis.command("PUBSUB", "CHANNELS", "*"))

    async def body():
        async with ClusterPool(n1) as p:
            assert listeners() == 0
            a, b, b2 = await room_across(p, [(n1, "a", room, "text"), (n2, "b", room, "text"),
                                             (n2, "b2", room, "text")])
            await asyncio.to_thread(settle, 2, "members on n1 and n2")
            await b.send("/join elsewhere")
            await b.expect("* b joined #elsewhere")
            await a.expect("* b left #%s" % room)
            await asyncio.to_thread(settle, 2, "n2 still has b2 in the room")
            await b2.send("/quit")
            await b2.expect_closed(1000)
            await a.expect("* b2 left #%s" % room)
            await asyncio.to_thread(settle, 1, "n2's last member left")
            await a.send("/join elsewhere")
            await a.expect("* a joined #elsewhere")
            await asyncio.to_thread(settle, 0, "everyone left")
    finish(body(), ns)


# ---------------------------------------------------------------- one room, one order

def test_clients_of_nodes_that_just_started(start_node):
    # a node serves clients from its "listening" line: what they do then
    # is cluster-wide like anything later (presence, notices), whether or
    # not the node's Redis connection was up yet. Five fresh clusters, the
    # clients connecting at once.
    from redisserver import RedisServer
    for k in range(5):
        r = RedisServer()
        try:
            n1, n2, n3 = ns = nodes(start_node, r, ready=False)

            async def body():
                async with ClusterPool(n1) as p:
                    a = await p.on(n1).join("alice", "dev")
                    await p.on(n3).join("carol", "dev")
                    await a.expect("* carol joined #dev")
                    j = await p.on(n2).jjoin("jill", "ops", history=False)
                    await eventually(json_ask(j, {"type": "users"}), {"type": "users", "users": ["alice", "carol", "jill"]},
                                     "presence on n2 (cluster %d)" % k)
            finish(body(), ns)
        finally:
            r.close()


def test_text_clients_on_three_nodes_chat_in_one_room(redis, start_node):
    n1, n2, n3 = ns = nodes(start_node, redis)

    async def body():
        async with ClusterPool(n1) as p:
            a, b, c = await room_across(p, [(n1, "alice", "dev", "text"), (n2, "bob", "dev", "text"),
                                            (n3, "carol", "dev", "text")])
            for sender in (a, b, c):
                line = "[dev] %s: hello from %s" % (sender.name, sender.name)
                await sender.send("hello from " + sender.name)
                for r in (a, b, c):
                    await r.expect(line)
            # once each: nothing more comes (the sender's node did not
            # deliver it again when it came back through Redis)
            for r in (a, b, c):
                await r.expect_quiet(0.5)
    finish(body(), ns)


def test_concurrent_senders_on_three_nodes_one_order_text_and_json(redis, start_node):
    n1, n2, n3 = ns = nodes(start_node, redis)
    per_sender = 40

    async def body():
        async with ClusterPool(n1) as p:
            members = await room_across(p, [
                (n1, "t1", "order", "text"), (n2, "j2", "order", "json"), (n3, "t3", "order", "text"),
                (n1, "j1", "order", "json"), (n2, "t2", "order", "text"), (n3, "j3", "order", "json")])
            t1, j2, t3, j1, t2, j3 = members
            senders = [t1, j2, t3, j1]           # two on n1, one each on n2 and n3
            total = per_sender * len(senders)

            async def send_all(s):
                for i in range(per_sender):
                    text = "%s says %d" % (s.name, i)
                    if hasattr(s, "recv_obj"):
                        await s.send({"type": "message", "text": text})
                    else:
                        await s.send(text)
                    if i % 8 == 7:
                        await asyncio.sleep(0)

            async def read_all(r):
                out = []
                for _ in range(total):
                    if hasattr(r, "recv_obj"):
                        out.append(check_event(await r.recv_obj(), "message", room="order"))
                    else:
                        out.append(await r.recv())
                return out

            got = await asyncio.gather(*[read_all(r) for r in members], *[send_all(s) for s in senders])
            seqs = dict(zip([m.name for m in members], got[:len(members)]))
            for r in members:
                await r.expect_quiet(0.5)       # nothing twice, nothing else
            # the JSON receivers: ids strictly increasing, the same events
            json_seqs = {n: s for n, s in seqs.items() if n.startswith("j")}
            for n, s in json_seqs.items():
                ids = [e["id"] for e in s]
                assert ids == sorted(set(ids)), "%s: ids not strictly increasing: %r" % (n, ids)
            first = json_seqs["j1"]
            for n, s in json_seqs.items():
                assert s == first, "%s saw another sequence than j1 (first difference at %d)" % (
                    n, next(i for i, (x, y) in enumerate(zip(s, first)) if x != y))
            # every member, text or JSON, saw the same lines in the same order
            want = [as_text_line(e) for e in first]
            for n, s in seqs.items():
                lines = s if not n.startswith("j") else [as_text_line(e) for e in s]
                assert lines == want, "%s's order differs from j1's: %r ... vs %r ..." % (
                    n, lines[:10], want[:10])
            # each message exactly once, each sender's own in the order sent
            expected = {"[order] %s: %s says %d" % (s.name, s.name, i) for s in senders for i in range(per_sender)}
            assert len(want) == len(set(want)) == total and set(want) == expected
            for s in senders:
                mine = [l for l in want if l.startswith("[order] %s: " % s.name)]
                assert mine == ["[order] %s: %s says %d" % (s.name, s.name, i) for i in range(per_sender)], mine
    finish(body(), ns, timeout=40)


def test_json_ids_grow_cluster_wide_across_rooms_events(redis, start_node):
    # joins, messages, renames and leaves made on three nodes: one room's
    # ids, seen from each node, only grow and are the same everywhere
    n1, n2, n3 = ns = nodes(start_node, redis)

    async def body():
        async with ClusterPool(n1) as p:
            a, b = await room_across(p, [(n1, "a1", "ids", "json"), (n2, "b2", "ids", "json")])
            c = await p.on(n3).jjoin("c3", "ids", history=False)
            ev = {"a": [], "b": []}
            for x, k in ((a, "a"), (b, "b")):
                ev[k].append(check_event(await x.recv_obj(), "join", name="c3"))
            steps = [
                (c, {"type": "message", "text": "from n3"}, "message"),
                (a, {"type": "message", "text": "from n1"}, "message"),
                (b, {"type": "nick", "name": "b2x"}, "nick"),
                (b, {"type": "message", "text": "from n2"}, "message"),
                (c, {"type": "leave", "room": "ids"}, "leave"),
            ]
            for who, req, t in steps:
                await who.send(req)
                for x, k in ((a, "a"), (b, "b")):
                    ev[k].append(check_event(await x.recv_obj(), t, room="ids"))
            assert ev["a"] == ev["b"], "n1 and n2 saw different events: %r / %r" % (ev["a"], ev["b"])
            ids = [e["id"] for e in ev["a"]]
            assert ids == sorted(set(ids)), "ids not strictly increasing: %r" % (ids,)
            assert ev["a"][0]["id"] > b.join_ev["id"] > a.join_ev["id"]
    finish(body(), ns)


def test_join_and_leave_notices_reach_other_nodes_once(redis, start_node):
    n1, n2, n3 = ns = nodes(start_node, redis)

    async def body():
        async with ClusterPool(n1) as p:
            a, j = await room_across(p, [(n1, "alice", "dev", "text"), (n2, "jill", "dev", "json")])
            b = await p.on(n3).join("bob", "dev")
            await a.expect("* bob joined #dev")
            check_event(await j.recv_obj(), "join", room="dev", name="bob")
            await b.send("/join other")
            await b.expect("* bob joined #other")
            await a.expect("* bob left #dev")
            check_event(await j.recv_obj(), "leave", room="dev", name="bob")
            await b.send("/join dev")
            await b.expect("* bob joined #dev")
            await a.expect("* bob joined #dev")
            check_event(await j.recv_obj(), "join", room="dev", name="bob")
            await b.send("/quit gone fishing")
            await b.expect_closed(1000)
            await a.expect("* bob left #dev (gone fishing)")
            check_event(await j.recv_obj(), "leave", room="dev", name="bob", reason="gone fishing")
            await a.expect_quiet(0.7)
            await j.expect_quiet(0.3)
    finish(body(), ns)


# ------------------------------------------------------------------ whispers

def test_whisper_across_nodes(redis, start_node):
    n1, n2, n3 = ns = nodes(start_node, redis)

    async def body():
        async with ClusterPool(n1) as p:
            alice = await p.on(n1).join("alice")
            bob = await p.on(n2).join("bob", "dev")      # another node, another room
            jill = await p.on(n3).jjoin("jill", "ops", history=False)
            # presence reaches each node a moment later: a whisper is owed
            # once the whisperer's node lists the recipient
            everyone = "* users: alice (#lobby), bob (#dev), jill (#ops)"
            await eventually(text_ask(alice, "/users *"), everyone, "presence on n1")
            await eventually(text_ask(bob, "/users *"), everyone, "presence on n2")
            await eventually(json_ask(jill, {"type": "users"}), {"type": "users", "users": ["alice", "bob", "jill"]},
                             "presence on n3")
            await alice.send("/whisper bob psst")
            await alice.expect("[whisper to bob] psst")
            await bob.expect("[whisper from alice] psst")
            await bob.send("/w jill hi there")
            await bob.expect("[whisper to jill] hi there")
            w = check_event(await jill.recv_obj(), "whisper", **{"from": "bob", "to": "jill", "text": "hi there"})
            await jill.send({"type": "whisper", "to": "alice", "text": "yo"})
            mine = check_event(await jill.recv_obj(), "whisper", **{"from": "jill", "to": "alice", "text": "yo"})
            assert mine["id"] != w["id"]
            await alice.expect("[whisper from jill] yo")
            # nobody of that name on any node
            await alice.send("/msg nobody hello?")
            await alice.expect("! no such user: nobody")
            await jill.send({"type": "whisper", "to": "nobody", "text": "x", "ref": "w"})
            await jill.expect_error("no_such_user", ref="w")
            # each whisper once, to its two ends only
            for c in (alice, bob, jill):
                await c.expect_quiet(0.4)
    finish(body(), ns)


# ------------------------------------------------------------------ typing

def test_typing_reaches_json_members_of_the_room_on_every_node(redis, start_node):
    """A JSON typing notice (ephemeral: a PUBLISH, no id) reaches the JSON
    members of its room on every node, once; not the sender, not text
    members, not another room's members; a second one within 3 s is not
    sent at all (it would arrive before the sentinel said after it: both
    leave the sender's node on one connection, in order)."""
    n1, n2, n3 = ns = nodes(start_node, redis)
    typing = {"type": "typing", "room": "dev", "from": "alice"}

    async def body():
        async with ClusterPool(n1) as p:
            alice, bob, dan, tex = await room_across(p, [
                (n1, "alice", "dev", "json"), (n2, "bob", "dev", "json"),
                (n3, "dan", "dev", "json"), (n3, "tex", "dev", "text")])
            carol = await p.on(n2).jjoin("carol", "ops", history=False)
            await alice.send({"type": "typing", "room": "dev"})
            for c in (bob, dan):
                got = await c.recv_obj()
                assert got == typing, got
                assert c.last_raw == '{"type":"typing","room":"dev","from":"alice"}', c.last_raw
            await alice.send({"type": "typing", "room": "dev", "ref": "again"})  # within 3 s: not sent
            await alice.send({"type": "message", "text": "sentinel"})
            for c in (alice, bob, dan):    # the sender no typing; the others nothing more
                check_event(await c.recv_obj(), "message", room="dev", text="sentinel")
            await tex.expect("[dev] alice: sentinel")
            # the other way, from another node; and another room's member saw nothing
            await bob.send({"type": "typing", "room": "dev"})
            assert await alice.recv_obj() == {"type": "typing", "room": "dev", "from": "bob"}
            assert await dan.recv_obj() == {"type": "typing", "room": "dev", "from": "bob"}
            await carol.expect_quiet(0.5)
            for c in (alice, bob, dan, tex):
                await c.expect_quiet(0.2)
    finish(body(), ns)


def test_typing_while_redis_is_away_stays_on_its_node_and_is_never_queued(redis, start_node):
    n1, n2 = ns = nodes(start_node, redis, n=2)
    alice_typing = {"type": "typing", "room": "dev", "from": "alice"}

    async def body():
        async with ClusterPool(n1) as p:
            alice, ann, bob = await room_across(p, [
                (n1, "alice", "dev", "json"), (n1, "ann", "dev", "json"), (n2, "bob", "dev", "json")])
            await asyncio.to_thread(redis.stop, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while await asyncio.to_thread(cluster_up, n1) != 0:
                assert time.monotonic() < deadline, "n1 still says it is connected to Redis"
                await asyncio.sleep(0.05)
            await alice.send({"type": "typing", "room": "dev"})
            assert await ann.recv_obj() == alice_typing      # its own node still gets it
            await asyncio.to_thread(redis.start)
            await asyncio.to_thread(wait_up, ns, RECONNECT_BOUND)
            # traffic across nodes again: ann says lines until bob hears
            # one; alice's typing was not kept for later
            seen = []
            deadline = time.monotonic() + RECONNECT_BOUND
            for i in range(1000):
                await ann.send({"type": "message", "text": "ping %d" % i})
                try:
                    seen.append(await bob.recv_obj(timeout=0.3))
                    break
                except AssertionError:
                    assert time.monotonic() < deadline, "bob (n2) hears nothing from n1 after Redis is back"
            await ann.send({"type": "typing", "room": "dev"})
            while seen[-1].get("type") != "typing":
                seen.append(await bob.recv_obj())
            assert seen[-1] == {"type": "typing", "room": "dev", "from": "ann"}, seen
            assert alice_typing not in seen, seen
            assert all(e["type"] == "message" for e in seen[:-1]), seen
    finish(body(), ns, timeout=40)


# ----------------------------------------------------------- users, rooms

def test_users_and_rooms_list_members_of_every_node(redis, start_node):
    n1, n2, n3 = ns = nodes(start_node, redis)

    async def body():
        async with ClusterPool(n1) as p:
            alice, carol = await room_across(p, [(n1, "alice", "dev", "text"), (n3, "carol", "dev", "text")])
            bob = await p.on(n2).join("bob")
            jill = await p.on(n2).jjoin("jill", "ops", history=False)
            everyone = "* users: alice (#dev), bob (#lobby), carol (#dev), jill (#ops)"
            rooms = "* rooms: dev (2), lobby (1), ops (1)"
            for c in (alice, bob, carol):                      # asked on each node
                await eventually(text_ask(c, "/users *"), everyone, "/users * on %s" % c.name)
                await eventually(text_ask(c, "/rooms"), rooms, "/rooms on %s" % c.name)
            await eventually(text_ask(carol, "/users"), "* users in #dev: alice, carol", "/users")
            await eventually(text_ask(bob, "/users"), "* users in #lobby: bob", "/users")
            await eventually(json_ask(jill, {"type": "users", "ref": 1}),
                             {"type": "users", "users": ["alice", "bob", "carol", "jill"]}, "JSON users")
            await eventually(json_ask(jill, {"type": "users", "room": "dev", "ref": 2}),
                             {"type": "users", "room": "dev", "users": ["alice", "carol"]}, "JSON users of dev")
            await eventually(json_ask(jill, {"type": "rooms", "ref": 3}),
                             {"type": "rooms", "rooms": [{"name": "dev", "users": 2}, {"name": "lobby", "users": 1},
                                                         {"name": "ops", "users": 1}]}, "JSON rooms")
            await jill.send({"type": "users", "room": "nowhere", "ref": 4})
            await jill.expect_error("no_such_room", ref=4)
            # carol leaves: she is gone from every node's lists
            await carol.send("/quit")
            await carol.expect_closed(1000)
            await alice.expect("* carol left #dev")
            await eventually(text_ask(bob, "/users *"), "* users: alice (#dev), bob (#lobby), jill (#ops)",
                             "/users * after carol left")
            await eventually(text_ask(alice, "/rooms"), "* rooms: dev (1), lobby (1), ops (1)", "/rooms after")
    finish(body(), ns)


# ------------------------------------------------------------------- names

def test_name_taken_on_one_node_cannot_be_taken_on_another(redis, start_node):
    n1, n2, n3 = ns = nodes(start_node, redis)

    async def body():
        async with ClusterPool(n1) as p:
            alice = await p.on(n1).join("alice")
            # at connect, on another node: a guest name and the error
            other = await p.on(n2).open("alice")
            name, room = parse_welcome(await other.recv())
            if not GUEST_RE.match(name):
                raise AssertionError("n2 welcomed a second alice while n1's alice is connected (then it got %r)"
                                     % (await reply_or_close(other),))
            assert room == "lobby"
            other.name, other.room = name, room
            await other.expect("! name already taken: alice")
            await alice.expect("* %s joined #lobby" % name)
            # /nick on a third node, in any case
            g = await p.on(n3).join(None, "elsewhere")
            for asked in ("alice", "ALICE"):
                await g.send("/nick " + asked)
                await g.expect("! name already taken: " + asked)
            # the JSON protocol too
            j = await p.on(n3).jopen("Alice", "elsewhere")
            w = await j.expect_obj("welcome")
            assert GUEST_RE.match(w["name"]), w
            j.name = w["name"]
            await j.expect_error("name_taken")
            check_event(await j.recv_obj(), "join", room="elsewhere", name=j.name)
            await g.expect("* %s joined #elsewhere" % j.name)
            await j.send({"type": "nick", "name": "alice", "ref": "n"})
            await j.expect_error("name_taken", ref="n")
            # alice leaves: her name is free on the other nodes
            await alice.close()
            await other.expect("* alice left #lobby")

            async def take():
                await g.send("/nick alice")
                return await g.recv()
            await eventually(take, "* %s is now known as alice" % g.name, "/nick alice after she left")
            await j.recv_obj()                         # g's rename, seen in #elsewhere
            g.name = "alice"
            # and now taken again, on the first node
            again = await p.on(n1).open("alice")
            n, _ = parse_welcome(await again.recv())
            if not GUEST_RE.match(n):
                raise AssertionError("n1 gave a new client the name alice, which the client on n3 was told it has "
                                     "(that client then got: %r)" % (await reply_or_close(g),))
            await again.expect("! name already taken: alice")
    finish(body(), ns)


def test_guest_names_are_unique_across_nodes(redis, start_node):
    ns = nodes(start_node, redis)

    async def body():
        async with ClusterPool(ns[0]) as p:
            names = []
            for _ in range(3):
                for n in ns:
                    c = await p.on(n).open(None, "g%d" % n.port)
                    name, _ = parse_welcome(await c.recv())
                    assert GUEST_RE.match(name), name
                    names.append(name.lower())
            assert len(set(names)) == len(names), "the same guest name on two nodes: %r" % (names,)
    finish(body(), ns)


def test_same_name_at_once_on_two_nodes_one_wins(redis, start_node):
    n1, n2, n3 = ns = nodes(start_node, redis)

    async def body():
        async with ClusterPool(n1) as p:
            for k in range(5):
                x = await p.on(n2).join(None, "x%d" % k)
                y = await p.on(n3).join(None, "y%d" % k)
                asked = "zed%d" % k
                await asyncio.gather(x.send("/nick " + asked), y.send("/nick " + asked))
                got = [await reply_or_close(x), await reply_or_close(y)]
                ok = [["* %s is now known as %s" % (c.name, asked)] for c in (x, y)]
                taken = ["! name already taken: " + asked]
                # one wins, the other is told the name is taken (and stays)
                assert sorted([got[0] == ok[0], got[1] == ok[1]]) == [False, True] and taken in got, \
                    "/nick %s at once on n2 and n3: %r" % (asked, got)
    finish(body(), ns)


async def reply_or_close(c, quiet=0.5):
    """What c receives until quiet for that long (a list of lines), with
    "closed CODE REASON" last if the server closed the connection."""
    import websockets
    out = []
    while True:
        try:
            out.append(await asyncio.wait_for(c.ws.recv(), quiet))
        except asyncio.TimeoutError:
            return out
        except websockets.exceptions.ConnectionClosed as e:
            out.append("closed %s %s" % (e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else ""))
            return out


# ------------------------------------------------------------------ history

def test_history_said_on_one_node_is_replayed_on_another(redis, start_node):
    n1, n2, n3 = ns = nodes(start_node, redis, history=True)

    async def body():
        async with ClusterPool(n1) as p:
            a = await p.on(n1).jjoin("alice", "dev")
            said = [a.join_ev]
            for i in range(5):
                await a.send({"type": "message", "text": "m%d" % i})
                said.append(check_event(await a.recv_obj(), "message", text="m%d" % i))
            # a text client on another node: the replay, then alice sees it join
            b = await p.on(n2).tjoin("bob", "dev", history=[as_text_line(e) for e in said])
            said.append(check_event(await a.recv_obj(), "join", name="bob"))
            # a JSON client on the third node: the same events, ids and all
            c = await p.on(n3).jjoin("carol", "dev")
            assert [live_of(m) for m in c.history] == said, c.history
            assert c.welcome["epoch"] == a.welcome["epoch"], "one history, one epoch"
            await a.expect_obj("join")
            await b.expect("* carol joined #dev")
            # /history on the second node
            await b.send("/history 3")
            await b.expect(*[HISTORY_PREFIX + as_text_line(e) for e in said[-2:]],
                           HISTORY_PREFIX + "* carol joined #dev")
    finish(body(), ns)


def test_recovery_with_since_on_another_node_gets_exactly_what_was_missed(redis, start_node):
    n1, n2, n3 = ns = nodes(start_node, redis, history=True)

    async def body():
        async with ClusterPool(n1) as p:
            a = await p.on(n1).jjoin("alice", "dev")
            b = await p.on(n2).jjoin("bob", "dev")
            await a.expect_obj("join")
            assert a.welcome["epoch"] == b.welcome["epoch"], (a.welcome, b.welcome)
            epoch = a.welcome["epoch"]
            await b.send({"type": "message", "text": "before"})
            last = check_event(await a.recv_obj(), "message", text="before")["id"]
            await b.expect_obj("message")
            await a.close()
            missed = [check_event(await b.recv_obj(), "leave", name="alice")]
            for i in range(60):                         # more than the replay (50)
                await b.send({"type": "message", "text": "missed %d" % i})
            for i in range(60):
                missed.append(check_event(await b.recv_obj(), "message", text="missed %d" % i))
            t = await p.on(n3).join("tex", "dev")        # a third node's events among them
            missed.append(check_event(await b.recv_obj(), "join", name="tex"))
            await t.send("from n3")
            missed.append(check_event(await b.recv_obj(), "message", text="from n3"))
            # alice comes back on the third node
            a2 = await p.on(n3).jjoin("alice", "dev", since=last, epoch=epoch)
            got = [live_of(m) for m in a2.history]
            assert [m["id"] for m in got] == [m["id"] for m in missed], "recovered ids"
            assert got == missed
            assert a2.join_ev["id"] > missed[-1]["id"]
            await b.send({"type": "message", "text": "live"})
            m = check_event(await a2.recv_obj(), "message", text="live")
            assert "history" not in m and m["id"] > a2.join_ev["id"]
            # and with a join request on the first node; another epoch is incomplete
            d = await p.on(n1).jjoin("dave")
            msgs, _ = await d.join_room("dev", since=missed[-1]["id"], epoch=epoch)
            assert [x["id"] for x in msgs] == [a2.join_ev["id"], m["id"]]
            other = "0" * 16 if epoch != "0" * 16 else "1" * 16
            await p.on(n2).jjoin("eve", "dev", since=last, epoch=other, complete=False)
    finish(body(), ns)


# -------------------------------------------------------------- a node dies

LEAVE_RE = re.compile(r"^\* (?P<name>\S+) left #(?P<room>\S+)( \(.*\))?$")


def test_sigkill_a_node_its_members_vanish_once(redis, start_node):
    n1, n2, n3 = nodes(start_node, redis)

    async def body():
        async with ClusterPool(n1) as p:
            o1, o2, v1, v2 = await room_across(p, [(n1, "o1", "dev", "text"), (n2, "o2", "dev", "text"),
                                                   (n3, "v1", "dev", "text"), (n3, "v2", "dev", "text")])
            l1, v3 = await room_across(p, [(n1, "l1", "lobby", "json"), (n3, "v3", "lobby", "json")])
            await p.on(n3).join("v4", "solo")
            all7 = ("* users: l1 (#lobby), o1 (#dev), o2 (#dev), v1 (#dev), v2 (#dev), v3 (#lobby), "
                    "v4 (#solo)")
            await eventually(text_ask(o1, "/users *"), all7, "presence on n1")
            await eventually(text_ask(o2, "/users *"), all7, "presence on n2")
            n3.terminate(signal.SIGKILL)
            t0 = time.monotonic()

            async def leaves(c, want):
                got = []
                while sorted(got) != sorted(want):
                    left = PRESENCE_BOUND - (time.monotonic() - t0)
                    assert left > 0, "%s: leaves %r within %.1f s, expected %r" % (c.name, got, PRESENCE_BOUND, want)
                    try:
                        msg = await c.recv(timeout=left)
                    except AssertionError:
                        raise AssertionError("%s: leaves %r within %.1f s of the SIGKILL, expected %r" % (
                            c.name, got, PRESENCE_BOUND, want)) from None
                    if hasattr(c, "recv_obj"):
                        e = check_event(parse(msg), "leave")
                        got.append((e["name"], e["room"]))
                    else:
                        line = msg
                        m = LEAVE_RE.match(line)
                        assert m, "%s: %r while waiting for leaves" % (c.name, line)
                        got.append((m["name"], m["room"]))
                return time.monotonic() - t0

            took = await asyncio.gather(leaves(o1, [("v1", "dev"), ("v2", "dev")]),
                                        leaves(o2, [("v1", "dev"), ("v2", "dev")]),
                                        leaves(l1, [("v3", "lobby")]))
            # once: no second leave comes
            for c in (o1, o2, l1):
                await c.expect_quiet(1.0)
            for c in (o1, o2):
                await eventually(text_ask(c, "/users *"), "* users: l1 (#lobby), o1 (#dev), o2 (#dev)",
                                 "/users * after the kill")
                await eventually(text_ask(c, "/rooms"), "* rooms: dev (2), lobby (1)", "/rooms after the kill")
            # their names are free again
            v1b = await p.on(n2).join("v1")
            await v1b.send("/nick v4")
            await v1b.expect("* v1 is now known as v4")
            assert max(took) <= PRESENCE_BOUND, took
    finish(body(), [n1, n2], timeout=30 + PRESENCE_BOUND)
    n3.stop()


def test_sigterm_a_node_its_members_leave_once(redis, start_node):
    # a node stopped on purpose (SIGTERM, as a deploy does) closes its
    # clients; the members of their rooms on other nodes are told, once,
    # as for any client that goes (they keep member lists from these
    # notices), and the names are free
    n1, n2, n3 = nodes(start_node, redis)

    async def body():
        async with ClusterPool(n1) as p:
            b, a, j = await room_across(p, [(n2, "bob", "dev", "text"), (n1, "alice", "dev", "text"),
                                            (n1, "jill", "dev", "json")])
            await eventually(text_ask(b, "/users *"), "* users: alice (#dev), bob (#dev), jill (#dev)", "presence")
            t0 = time.monotonic()
            rc = await asyncio.to_thread(n1.terminate)
            assert rc == 0, n1.stderr_text()[-2000:]
            got = []
            while len(got) < 2:
                left = PRESENCE_BOUND - (time.monotonic() - t0)
                try:
                    line = await b.recv(timeout=max(left, 0.01))
                except AssertionError:
                    raise AssertionError("bob (n2) was told %r within %.1f s of n1's SIGTERM, expected alice's "
                                         "and jill's leaves" % (got, PRESENCE_BOUND)) from None
                m = LEAVE_RE.match(line)
                assert m and m["room"] == "dev", "bob: %r while waiting for leaves" % (line,)
                got.append(m["name"])
            assert sorted(got) == ["alice", "jill"], got
            await b.expect_quiet(1.0)
            await eventually(text_ask(b, "/users *"), "* users: bob (#dev)", "/users * after n1 stopped")
            c = await p.on(n3).join("alice")
            await c.send("/nick jill")
            await c.expect("* alice is now known as jill")
    finish(body(), [n2, n3], timeout=30 + PRESENCE_BOUND)


# ----------------------------------------------------------- Redis restarts

def _redis_series(metrics):
    """The series of /metrics about the cluster's Redis connection."""
    return {k[0]: v for k, v in metrics.samples.items() if "redis" in k[0] or "cluster" in k[0]}



def test_redis_restart_mid_traffic(redis, start_node):
    from test_metrics import scrape
    n1, n2, n3 = ns = nodes(start_node, redis, history=True)
    pace = 0.02

    async def body():
        async with ClusterPool(n1) as p:
            a, b, c, a2, r = await room_across(p, [
                (n1, "a", "dev", "json"), (n2, "b", "dev", "json"), (n3, "c", "dev", "json"),
                (n1, "a2", "dev", "json"), (n2, "r", "dev", "json")], history=True)
            # r leaves before the outage and recovers after it
            epoch = r.welcome["epoch"]
            await r.send({"type": "message", "text": "r was here"})
            r_last = None
            for x in (a, b, c, a2, r):
                e = check_event(await x.recv_obj(), "message", text="r was here")
                r_last = e["id"]
            await r.close()
            for x in (a, b, c, a2):
                check_event(await x.recv_obj(), "leave", name="r")
            before = _redis_series(scrape(n1))
            assert before, "n1's /metrics has no series about Redis"
            log_from = {n: len(n.stderr_text()) for n in ns}

            sent = {}                 # text -> monotonic time it was sent
            stop = asyncio.Event()
            seen = {x.name: [] for x in (a, b, c, a2)}   # (monotonic time, event)

            async def sender(s):
                i = 0
                while not stop.is_set():
                    text = "%s-%d" % (s.name, i)
                    sent[text] = time.monotonic()
                    await s.send({"type": "message", "text": text})
                    i += 1
                    await asyncio.sleep(pace)

            async def reader(x):
                while True:
                    try:
                        e = await x.recv_obj(timeout=2.5)
                    except AssertionError:
                        if stop.is_set():
                            return
                        continue
                    assert e["type"] in ("message", "join", "leave", "notice"), e
                    seen[x.name].append((time.monotonic(), e))

            readers = [asyncio.ensure_future(reader(x)) for x in (a, b, c, a2)]
            senders = [asyncio.ensure_future(sender(x)) for x in (a, b, c)]
            await asyncio.sleep(0.5)
            t_down = time.monotonic()
            await asyncio.to_thread(redis.stop, signal.SIGKILL)
            await asyncio.sleep(0.8)
            during = _redis_series(scrape(n1))
            await asyncio.sleep(0.4)
            t_up0 = time.monotonic()
            await asyncio.to_thread(redis.start)
            t_up = time.monotonic()
            # traffic across nodes again, within the bound: each of a (n1),
            # b (n2), c (n3) gets messages the other two sent after Redis
            # was back (each node reconnects on its own backoff)
            deadline = t_up + RECONNECT_BOUND
            pairs = [(x, y) for x in "abc" for y in "abc" if x != y]
            while True:
                flowing = {(x, y) for x, y in pairs
                           if any(e["type"] == "message" and e["from"] == y and sent.get(e["text"], 0) > t_up
                                  for _, e in seen[x])}
                if len(flowing) == len(pairs):
                    break
                assert time.monotonic() < deadline, \
                    "within %.0f s of Redis's restart, traffic flows only (to, from) %r" % (
                        RECONNECT_BOUND, sorted(flowing))
                await asyncio.sleep(0.1)
            t_flow = time.monotonic()
            await asyncio.sleep(0.5)
            stop.set()
            t_stop = time.monotonic()
            await asyncio.gather(*senders)
            await asyncio.gather(*readers)
            after = _redis_series(scrape(n1))

            # nothing twice, to anyone
            for name, evs in seen.items():
                texts = [e["text"] for _, e in evs if e["type"] == "message"]
                dup = {t for t in texts if texts.count(t) > 1}
                assert not dup, "%s received twice: %r" % (name, sorted(dup)[:10])
            # one id, one event, on every node (outside the outage, when
            # each node is on its own and only its members see its events)
            by_id = {}
            for name, evs in seen.items():
                for _, e in evs:
                    if e["type"] == "message" and not t_down <= sent[e["text"]] <= t_flow:
                        by_id.setdefault(e["id"], {}).setdefault((e["from"], e["text"]), []).append(name)
            clash = {i: v for i, v in by_id.items() if len(v) > 1}
            assert not clash, "one id, different events on different members: %r" % (sorted(clash.items())[:5],)
            # nobody joined or left: nobody is told so (rebuilding presence
            # after the restart is not news to the rooms)
            for name, evs in seen.items():
                moves = [e for _, e in evs if e["type"] in ("join", "leave")]
                assert not moves, "%s was told of joins/leaves that did not happen: %r" % (name, moves[:5])
            # the local member was served during the outage: a2 got a's
            # messages sent while Redis was down
            outage = [e["text"] for _, e in seen["a2"] if e["type"] == "message" and e["from"] == "a"
                      and t_down + 0.1 < sent[e["text"]] < t_up0]
            assert outage, "n1 did not deliver a's messages to a2 (same node) while Redis was down"
            # after traffic flowed again, every member saw every message of
            # every node sent from then on, in one order
            late = {}
            for name, evs in seen.items():
                late[name] = [e["text"] for _, e in evs if e["type"] == "message" and sent[e["text"]] > t_flow]
            want = sorted(t for t, ts in sent.items() if ts > t_flow)
            for name, texts in late.items():
                lost = sorted(set(want) - set(texts))
                assert not lost, "%s missed messages sent after traffic flowed again: %r (sent %s s after the " \
                    "restart, %.2f s before the senders stopped; got by %r)" % (
                        name, lost[:10], ["%.2f" % (sent[t] - t_up) for t in lost[:10]], t_stop - max(sent[t] for t in lost),
                        {n: [t for t in lost if t in ts] for n, ts in late.items()})
                assert sorted(texts) == want, "%s got messages sent by nobody: %r" % (name, sorted(set(texts) - set(want)))
                assert texts == late["a"], "%s's order after the outage differs from a's" % name
            # /metrics and the log told of the outage
            assert before.get(UP) == 1 and during.get(UP) == 0 and after.get(UP) == 1, \
                "%s before, during, after the outage: %r, %r, %r" % (UP, before.get(UP), during.get(UP), after.get(UP))
            assert after.get(RECONNECTS, 0) > before.get(RECONNECTS, 0), (RECONNECTS, before, after)
            assert after.get(OUTAGE, 0) > before.get(OUTAGE, 0), (OUTAGE, before, after)
            for n in ns:
                log = n.stderr_text()[log_from[n]:]
                assert re.search(r"redis", log, re.I), "node %d logged nothing about the outage: %r" % (
                    n.port, log[-2000:])
            # recovery across the outage: honest
            r2 = await p.on(n3).jopen("r", "dev", since=r_last, epoch=epoch)
            w2 = await r2.expect_obj("welcome")
            # Redis came back empty (no persistence): its ids mean another
            # history, which the epoch says
            assert w2["epoch"] != epoch and isinstance(w2["epoch"], str), (epoch, w2)
            hist = await r2.recv_obj()
            assert hist["type"] == "history", hist
            got = {m["text"] for m in hist["messages"] if m["type"] == "message"}
            everything = {e["text"] for evs in seen.values() for _, e in evs if e["type"] == "message"}
            if hist["complete"] is True:
                missing = everything - got
                assert not missing, "recovery across the outage says complete but lacks %d messages: %r" % (
                    len(missing), sorted(missing)[:10])
            else:
                assert hist["complete"] is False, hist["complete"]
            # ids never went back for anyone (Redis lost its memory: no persistence)
            for name, evs in seen.items():
                evs_ = [e for _, e in evs if "id" in e]
                back_steps = [(x, y) for x, y in zip(evs_, evs_[1:]) if y["id"] <= x["id"]]
                assert not back_steps, "%s: ids went back across the Redis restart (up again %.2f s after it " \
                    "went down): %r" % (name, t_up - t_down,
                                        [(x, y, "sent at +%.2f s, +%.2f s" % (sent.get(x.get("text"), 0) - t_down,
                                                                              sent.get(y.get("text"), 0) - t_down))
                                         for x, y in back_steps[:5]])
    finish(body(), ns, timeout=45)
