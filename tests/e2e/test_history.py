"""History through chat-cli, as issue 8 (part 1 and the recovery of part 2)
and docs/PROTOCOL.md (1.2 and 2.5) say it: replay on connect and on join
in both protocols, /history and its cap, no gap and no duplicate between
history and live traffic, survival of a clean restart and of a SIGKILL
(counted: what was acknowledged must come back), ids that never go back,
recovery with since/epoch, pruning, whispers never stored, --no-history
and the default file.

Every server here gets --history PATH (a file under tmp_path) or
--no-history explicitly."""
import asyncio
import os
import re
import signal
import time

import pytest
import websockets

from conftest import without_flood_control

from chatclient import run
from jsonclient import (HISTORY_PREFIX, CliProcess, Pool, as_text_line, check_event, fetch_all,
                        live_of)



@pytest.fixture
def start_server(start_server):  # noqa: F811 (conftest's, without flood control)
    return without_flood_control(start_server)

def hist(*lines):
    return [HISTORY_PREFIX + l for l in lines]


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "x.db")


# ------------------------------------------------------- text replay

def test_text_replay_on_connect_is_prefixed_oldest_first_then_live(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.join("alice", "dev")             # an empty room: no history
            await a.send("one")
            await a.expect("[dev] alice: one")
            await a.send("/me waves")
            await a.expect("* alice waves")
            await a.send("two")
            await a.expect("[dev] alice: two")
            b = await p.join("bob", "dev")
            await b.expect(*hist("* alice joined #dev", "[dev] alice: one", "* alice waves", "[dev] alice: two"))
            await a.expect("* bob joined #dev")
            await a.send("live")
            await a.expect("[dev] alice: live")
            await b.expect("[dev] alice: live")        # live lines have no prefix
            await b.expect_quiet()
            # a room of its own history: lobby has none of dev's
            c = await p.join("carl")
            await c.send("/history")
            await c.expect(*hist("* carl joined #lobby"))
    run(body(), s)


def test_text_replay_gives_exactly_the_last_n(start_server, db):
    s = start_server("--history", db, "--history-replay", "3")

    async def body():
        async with Pool(s) as p:
            a = await p.join("alice", "dev")
            for i in range(1, 7):
                await a.send("m%d" % i)
                await a.expect("[dev] alice: m%d" % i)
            b = await p.join("bob", "dev")
            await b.expect(*hist("[dev] alice: m4", "[dev] alice: m5", "[dev] alice: m6"))
            await a.expect("* bob joined #dev")
            await a.send("now")
            await a.expect("[dev] alice: now")
            await b.expect("[dev] alice: now")
            # /history without N is not bound by --history-replay
            await b.send("/history 5")
            await b.expect(*hist("[dev] alice: m4", "[dev] alice: m5", "[dev] alice: m6",
                                 "* bob joined #dev", "[dev] alice: now"))
            await b.expect_quiet()
    run(body(), s)


def test_text_replay_after_join(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.join("alice", "dev")
            await a.send("hello dev")
            await a.expect("[dev] alice: hello dev")
            b = await p.join("bob")                       # lobby: empty history
            await b.send("/join dev")
            # the room's history, then bob's own join (as a JSON joiner gets
            # its history object before its join event), then live
            await b.expect(*hist("* alice joined #dev", "[dev] alice: hello dev"))
            await b.expect("* bob joined #dev")
            b.room = "dev"
            await a.expect("* bob joined #dev")
            await a.send("live")
            await a.expect("[dev] alice: live")
            await b.expect("[dev] alice: live")
            # lobby kept bob's join and leave
            c = await p.join("carl")
            await c.expect(*hist("* bob joined #lobby", "* bob left #lobby"))
            await c.send("x")
            await c.expect("[lobby] carl: x")
    run(body(), s)


def test_text_history_command(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.join("alice", "dev")
            lines = ["* alice joined #dev"]
            for i in range(1, 6):
                await a.send("m%d" % i)
                lines.append("[dev] alice: m%d" % i)
                await a.expect(lines[-1])
            await a.send("/history 3")
            await a.expect(*hist(*lines[-3:]))
            await a.send("/history")
            await a.expect(*hist(*lines))
            await a.send("/history 1")
            await a.expect(*hist(lines[-1]))
            for bad in ("/history x", "/history 0", "/history -2", "/history 3x"):
                await a.send(bad)
                await a.expect("! usage: /history [N] (1-500)")
            await a.send("/history 2")                   # a /history is not itself stored
            await a.expect(*hist(*lines[-2:]))
            await a.expect_quiet()
    run(body(), s)


def test_history_cap_and_default_replay(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.join("alice", "dev")
            lines = ["* alice joined #dev"]
            n = 520
            for i in range(n):
                await a.send("m%d" % i)
            for i in range(n):
                lines.append("[dev] alice: m%d" % i)
            await a.expect(*lines[1:])
            b = await p.join("bob", "dev")
            await b.expect(*hist(*lines[-50:]))          # the default replay: 50
            await a.expect("* bob joined #dev")
            lines.append("* bob joined #dev")
            for cmd in ("/history 100000", "/history 501", "/history 500"):
                await b.send(cmd)
                await b.expect(*hist(*lines[-500:]))
            await b.send("/history")
            await b.expect(*hist(*lines[-50:]))
            await b.expect_quiet()
    run(body(), s, timeout=20)


# ------------------------------------------------------- JSON history

def test_json_history_on_join_and_at_connect(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", "dev")
            assert a.history == []                       # a new room
            seen = [a.join_ev]                            # dev as alice saw it live
            t = await p.join("tex", "dev")
            seen.append(check_event(await a.recv_obj(), "join", name="tex"))
            await a.send({"type": "message", "text": "hi"})
            seen.append(check_event(await a.recv_obj(), "message", text="hi"))
            await t.send("/me waves")
            seen.append(check_event(await a.recv_obj(), "message", text="waves", action=True))
            await t.send("/nick tom")
            seen.append(check_event(await a.recv_obj(), "nick", **{"from": "tex", "to": "tom"}))
            await t.send("/quit bye")
            seen.append(check_event(await a.recv_obj(), "leave", name="tom", reason="bye"))
            # at connect: welcome, history, own join
            b = await p.jjoin("bob", "dev")
            assert [live_of(m) for m in b.history] == seen
            assert [list(live_of(m)) for m in b.history] == [list(e) for e in seen]
            assert b.join_ev["id"] > seen[-1]["id"]
            seen.append(check_event(await a.recv_obj(), "join", name="bob"))
            # with a join request: history object, own join, then live
            c = await p.jjoin("carol")
            msgs, ev = await c.join_room("dev")
            assert [live_of(m) for m in msgs] == seen
            seen.append(check_event(await a.recv_obj(), "join", name="carol"))
            assert ev == seen[-1]
            await a.send({"type": "message", "text": "live"})
            live = await c.recv_obj()
            assert "history" not in live and live["id"] > ev["id"], live
            seen.append(live)
            # a text joiner gets the same events as lines
            t2 = await p.join("tim", "dev")
            await t2.expect(*hist(*[as_text_line(e) for e in seen]))
            await t2.expect_quiet()
    run(body(), s)


def test_stored_text_comes_back_exactly(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", "dev")
            texts = ["tab\there\nnewline", "\u00e9 \u2713 \U0001f600", "x" * 65536, "  spaces  ", '"quoted" \\ back']
            seen = []
            for t in texts:
                await a.send({"type": "message", "text": t})
                seen.append(check_event(await a.recv_obj(), "message", text=t))
            b = await p.jjoin("bob", "dev")
            assert [live_of(m) for m in b.history][1:] == seen
            t = await p.join("tex", "dev")
            await t.expect(*hist("* alice joined #dev", "[dev] alice: tab here newline",
                                 "[dev] alice: \u00e9 \u2713 \U0001f600", "[dev] alice: " + "x" * 65536,
                                 "[dev] alice:   spaces  ", '[dev] alice: "quoted" \\ back', "* bob joined #dev"))
    run(body(), s)


def test_json_history_request(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", "dev")
            evs = [a.join_ev]
            for i in range(6):
                await a.send({"type": "message", "text": "m%d" % i})
                evs.append(check_event(await a.recv_obj(), "message", text="m%d" % i))
            await a.send({"type": "history", "room": "dev", "limit": 2, "ref": "h"})
            got = await a.expect_history("dev", ref="h")
            assert [live_of(m) for m in got] == evs[-2:]
            await a.send({"type": "history", "room": "DEV", "limit": 3, "before": evs[3]["id"], "ref": 9})
            got = await a.expect_history("dev", ref=9)
            assert [live_of(m) for m in got] == evs[:3]
            await a.send({"type": "history", "room": "dev", "limit": 500})
            got = await a.expect_history("dev")              # fewer than limit: still complete
            assert [live_of(m) for m in got] == evs
            await a.send({"type": "history", "room": "dev", "limit": 5, "before": evs[0]["id"]})
            assert await a.expect_history("dev") == []
            await a.send({"type": "history", "room": "ops", "limit": 5, "ref": "o"})
            await a.expect_error("not_member", ref="o")
            # leaving and joining again: the history object holds the leave
            await a.join_room("ops")
            await a.send({"type": "leave", "room": "dev"})
            evs.append(check_event(await a.recv_obj(), "leave", room="dev", name="alice"))
            msgs, ev = await a.join_room("dev")
            assert [live_of(m) for m in msgs] == evs
    run(body(), s)


def test_whispers_and_typing_are_never_stored(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", "dev")
            b = await p.jjoin("bob", "dev")
            await a.expect_obj("join")
            t = await p.join("tex", "dev")
            await t.expect(*hist("* alice joined #dev", "* bob joined #dev"))
            for c in (a, b):
                await c.expect_obj("join")
            await a.send({"type": "whisper", "to": "bob", "text": "secret one"})
            await a.expect_obj("whisper")
            await b.expect_obj("whisper")
            await t.send("/whisper alice secret two")
            await t.expect("[whisper to alice] secret two")
            await a.expect_obj("whisper")
            await a.send({"type": "typing", "room": "dev"})
            await b.expect_obj("typing")
            await a.send({"type": "message", "text": "public"})
            for c in (a, b):
                await c.expect_obj("message")
            await t.expect("[dev] alice: public")
            stored = await fetch_all(a, "dev")
            assert [e["type"] for e in stored] == ["join", "join", "join", "message"], stored
            u = await p.join("ursula", "dev")
            await u.expect(*hist("* alice joined #dev", "* bob joined #dev", "* tex joined #dev",
                                 "[dev] alice: public"))
            await u.expect_quiet()
    run(body(), s)


# ------------------------------------------- no gap, no duplicate

async def _stream(sender, started, joined, as_json):
    """sender says s0, s1, ...: sets started after 30 lines, and stops 30
    lines after joined was set. Returns how many it said."""
    i = 0
    after = None
    while after is None or i < after:
        text = "s%d" % i
        await sender.send({"type": "message", "text": text} if as_json else text)
        i += 1
        if i == 30:
            started.set()
        if joined.is_set() and after is None:
            after = i + 30
        await asyncio.sleep(0.002)
    return i


@pytest.mark.parametrize("how", ["connect", "join"])
def test_text_no_gap_no_duplicate_while_others_talk(start_server, db, how):
    s = start_server("--history", db, "--history-replay", "500")

    async def body():
        async with Pool(s) as p:
            snd = await p.join("sam", "dev")
            started, joined = asyncio.Event(), asyncio.Event()
            task = asyncio.ensure_future(_stream(snd, started, joined, False))
            await started.wait()
            if how == "connect":
                j = await p.open("jo", "dev")
            else:
                j = await p.join("jo")
                await j.send("/join dev")
            joined.set()
            sent = await task
            await snd.send("end")
            got = []
            while True:
                line = await j.recv()
                got.append(line)
                if line == "[dev] sam: end":
                    break
            if how == "connect":
                assert got[0] == "* welcome, jo! you are in #dev; type /help for commands", got[:3]
                got = got[1:]
            nh = 0
            while nh < len(got) and got[nh].startswith(HISTORY_PREFIX):
                nh += 1
            history, live = [l[len(HISTORY_PREFIX):] for l in got[:nh]], got[nh:]
            assert not any(l.startswith(HISTORY_PREFIX) for l in live), "history after live: %r" % got
            assert history[0] == "* sam joined #dev", history[:3]
            if how == "join":
                assert live[0] == "* jo joined #dev", live[:3]
            said = [l for l in history + live if l.startswith("[dev] sam: ")]
            want = ["[dev] sam: s%d" % i for i in range(sent)] + ["[dev] sam: end"]
            assert said == want, "gap or duplicate between history and live (%d in history): %r" % (
                sum(1 for l in history if l.startswith("[dev] sam")), said)
            assert any(l.startswith("[dev] sam: s") for l in live), "the join did not happen mid-stream"
    run(body(), s, timeout=20)


@pytest.mark.parametrize("how", ["connect", "join"])
def test_json_no_gap_no_duplicate_while_others_talk(start_server, db, how):
    s = start_server("--history", db, "--history-replay", "500")

    async def body():
        async with Pool(s) as p:
            snd = await p.jjoin("sam", "dev")
            started, joined = asyncio.Event(), asyncio.Event()
            task = asyncio.ensure_future(_stream(snd, started, joined, True))
            await started.wait()
            if how == "connect":
                j = await p.jopen("jo", "dev")
                await j.expect_obj("welcome")
            else:
                j = await p.jjoin("jo")
                await j.send({"type": "join", "room": "dev"})
            j.name = "jo"
            joined.set()
            sent = await task
            await snd.send({"type": "message", "text": "end"})
            h = await j.expect_history("dev")
            own = check_event(await j.recv_obj(), "join", room="dev", name="jo")
            live = []
            while True:
                ev = await j.recv_obj()
                assert "history" not in ev, ev
                live.append(ev)
                if ev["type"] == "message" and ev["text"] == "end":
                    break
            seq = h + [own] + live
            ids = [e["id"] for e in seq]
            assert ids == sorted(set(ids)), "ids not strictly increasing: %r" % ids
            assert h[0]["type"] == "join" and h[0]["name"] == "sam", h[:2]
            texts = [e["text"] for e in seq if e["type"] == "message"]
            assert texts == ["s%d" % i for i in range(sent)] + ["end"], \
                "gap or duplicate between history and live: %r" % texts
            assert any(e["type"] == "message" and e["text"] != "end" for e in live), "joined after the stream"
    run(body(), s, timeout=20)


# ----------------------------------------------------- restarts

def test_clean_restart_keeps_everything_and_ids_grow(start_server, db):
    # a long flush: what the clean shutdown writes is most of it
    s1 = start_server("--history", db, "--history-flush-ms", "1000")
    old = {}

    async def phase1():
        async with Pool(s1) as p:
            a = await p.jjoin("alice", "dev")
            t = await p.join("tex", "dev")
            seen = [a.join_ev, check_event(await a.recv_obj(), "join", name="tex")]
            await t.send("/me is here")
            seen.append(await a.expect_obj("message"))
            n = 200
            for i in range(n):                       # then stop right after the last one
                await a.send({"type": "message", "text": "m%d" % i})
            for i in range(n):
                seen.append(check_event(await a.recv_obj(), "message", text="m%d" % i))
            old["seen"], old["epoch"] = seen, a.welcome["epoch"]
            assert s1.terminate() == 0, s1.stderr_text()[-2000:]

    run(phase1())
    s2 = start_server("--history", db)

    async def phase2():
        async with Pool(s2) as p:
            c = await p.jjoin("carol", "dev")
            assert c.welcome["epoch"] == old["epoch"], "the same file, another epoch"
            stored = await fetch_all(c, "dev")
            top = old["seen"][-1]["id"]
            before = [live_of(e) for e in stored if e["id"] <= top]
            assert before == old["seen"], "lost or changed on a clean restart: %d of %d back" % (
                len(before), len(old["seen"]))
            # anything stored at shutdown (leaves) is older than the new ids
            assert c.join_ev["id"] > max(e["id"] for e in stored if e["id"] != c.join_ev["id"])
            assert [live_of(m) for m in c.history] == [live_of(e) for e in stored if e["id"] < c.join_ev["id"]][-50:]
            await c.send({"type": "message", "text": "new"})
            m = check_event(await c.recv_obj(), "message", text="new")
            assert m["id"] > c.join_ev["id"] > top
            # a text joiner sees the same 50 events as text
            want = [as_text_line(live_of(e)) for e in (await fetch_all(c, "dev"))[-50:]]
            t = await p.join("tim", "dev")
            await t.expect(*hist(*want))
    run(phase2(), s2)


async def _traffic_until_kill(server, room, seconds, pace=0.002):
    """alice (JSON) says k0, k1, ... in room while bob (JSON) listens;
    after `seconds` the server gets SIGKILL. Returns (acks, received,
    t_kill, max_id): acks maps text -> (time alice got it back, id);
    received is every (id, text) any of the two got, read until the
    connection dropped; max_id the highest id anyone saw."""
    acks, received, ids = {}, set(), [0]
    async with Pool(server) as p:
        a = await p.jjoin("alice", room)
        b = await p.jjoin("bob", room)
        await a.expect_obj("join")
        ids += [a.join_ev["id"], b.join_ev["id"]]
        stop = asyncio.Event()

        async def send():
            i = 0
            try:
                while not stop.is_set():
                    await a.send({"type": "message", "text": "k%d" % i})
                    i += 1
                    await asyncio.sleep(pace)
            except websockets.exceptions.ConnectionClosed:
                pass

        async def read(c, mine):
            try:
                while True:
                    ev = await c.recv_obj(timeout=10)
                    t = time.monotonic()
                    ids.append(ev.get("id", 0))
                    if ev["type"] == "message":
                        received.add((ev["id"], ev["text"]))
                        if mine:
                            acks[ev["text"]] = (t, ev["id"])
            except websockets.exceptions.ConnectionClosed:
                pass

        readers = [asyncio.ensure_future(read(a, True)), asyncio.ensure_future(read(b, False))]
        sender = asyncio.ensure_future(send())
        await asyncio.sleep(seconds)
        t_kill = time.monotonic()
        server.proc.send_signal(signal.SIGKILL)
        stop.set()
        await asyncio.wait_for(asyncio.gather(sender, *readers), 5)
        assert server.proc.wait(timeout=5) == -signal.SIGKILL
    return acks, received, t_kill, max(ids)


async def _stored_after_restart(server, room):
    """Returns (stored, carol's join id, her message's id, whether her
    replay said complete, whether her `history` request for the last 50
    (after her join and message) said complete, what a text joiner got
    after its 50 replayed lines: the next line or None)."""
    async with Pool(server) as p:
        c = await p.jopen("carol", room)
        await c.expect_obj("welcome")
        h = await c.expect_obj("history")       # complete or not: checked by the caller
        join = check_event(await c.recv_obj(), "join", room=room, name="carol")
        stored = await fetch_all(c, room, require_complete=False)
        await c.send({"type": "message", "text": "after"})
        m = check_event(await c.recv_obj(), "message", text="after")
        await c.send({"type": "history", "room": room, "limit": 50, "ref": "last50"})
        h50 = await c.expect_obj("history")
        t = await p.join("tex", room)
        await t.recv_n(50)
        try:
            after_replay = await t.recv(timeout=0.5)
        except AssertionError:
            after_replay = None
    return stored, join["id"], m["id"], h["complete"], h50["complete"], after_replay


def test_sigkill_default_flush_loses_at_most_the_last_moment(start_server, db):
    s1 = start_server("--history", db)
    acks, received, t_kill, max_id = run(_traffic_until_kill(s1, "dev", 1.5), timeout=15)
    assert len(acks) > 100, "too little traffic to judge: %d" % len(acks)
    s2 = start_server("--history", db)
    stored, join_id, msg_id, complete, complete50, after_replay = run(_stored_after_restart(s2, "dev"), s2)
    back = {e["text"]: e["id"] for e in stored if e["type"] == "message" and e["from"] == "alice"}
    for text, i in back.items():
        assert acks.get(text, (0, i))[1] == i, "%s came back with id %d, was %d" % (text, i, acks[text][1])
    lost = sorted(((t, text) for text, (t, _) in acks.items() if text not in back))
    old = [(round(t_kill - t, 3), text) for t, text in lost if t < t_kill - 0.3]
    assert not old, "acknowledged more than 300 ms before the SIGKILL and lost (%d of %d lost in all): %r" % (
        len(old), len(acks), old[:10])
    # ids never go back, even over ids that were handed out but not stored
    assert join_id > max_id and msg_id > join_id, (max_id, join_id, msg_id)
    if lost:
        # carol's replay, the first read after the crash, covers lost events
        # (what later reads say is test_after_a_crash_replays_say_what_is_missing's)
        assert complete is False, "%d acknowledged messages lost, yet the replay says complete" % len(lost)


def test_sigkill_sync_full_loses_nothing_anyone_received(start_server, db):
    s1 = start_server("--history", db, "--history-sync", "full")
    acks, received, t_kill, max_id = run(_traffic_until_kill(s1, "dev", 1.0), timeout=15)
    assert len(acks) > 20, "too little traffic to judge: %d" % len(acks)
    s2 = start_server("--history", db, "--history-sync", "full")
    stored, join_id, msg_id, _, _, _ = run(_stored_after_restart(s2, "dev"), s2)
    back = {(e["id"], e["text"]) for e in stored if e["type"] == "message"}
    lost = sorted(received - back)
    assert not lost, "received by a client before the SIGKILL, gone after it (%d of %d): %r" % (
        len(lost), len(received), lost[:10])
    assert join_id > max_id and msg_id > join_id


def test_after_a_crash_replays_say_what_is_missing(start_server, db):
    """Five lines written, five acknowledged but not (a 1 s flush), SIGKILL:
    every later read whose range covers the lost five must say so, also
    once new events were stored after the restart (PROTOCOL.md 2.5:
    complete is false when events that would have been in the answer are
    missing; 1.2: the line "! some history of #ROOM is missing")."""
    s1 = start_server("--history", db, "--history-flush-ms", "1000")

    async def phase1():
        async with Pool(s1) as p:
            a = await p.jjoin("alice", "dev")
            for i in range(10):
                if i == 5:
                    await asyncio.sleep(1.4)              # w0..w4 written by now
                await a.send({"type": "message", "text": "w%d" % i})
                check_event(await a.recv_obj(), "message", text="w%d" % i)
            s1.proc.send_signal(signal.SIGKILL)
            assert s1.proc.wait(timeout=5) == -signal.SIGKILL
    run(phase1())
    s2 = start_server("--history", db)

    async def phase2():
        async with Pool(s2) as p:
            c = await p.jjoin("carol", "dev", complete=False)      # the first read after the crash
            assert [m.get("text") for m in c.history] == [None, "w0", "w1", "w2", "w3", "w4"], c.history
            await c.send({"type": "message", "text": "after"})
            after = check_event(await c.recv_obj(), "message", text="after")
            await c.send({"type": "history", "room": "dev", "limit": 50, "ref": "last"})
            h = await c.expect_history("dev", complete=False, ref="last")
            assert [m.get("text") for m in h][-3:] == ["w4", None, "after"], h
            # exactly `limit` rows, the lost ones among the newest `limit` events
            await c.send({"type": "history", "room": "dev", "limit": 3, "ref": "three"})
            h = await c.expect_history("dev", complete=False, ref="three")
            assert [m.get("text") for m in h] == ["w4", None, "after"], h
            await c.send({"type": "history", "room": "dev", "limit": 3, "before": after["id"], "ref": "b3"})
            h = await c.expect_history("dev", complete=False, ref="b3")
            assert [m.get("text") for m in h] == ["w3", "w4", None], h
            await c.send({"type": "history", "room": "dev", "limit": 2, "before": c.join_ev["id"], "ref": "b"})
            h = await c.expect_history("dev", complete=False, ref="b")
            assert [m["text"] for m in h] == ["w3", "w4"], h
            t = await p.tjoin("tex", "dev", history=["* alice joined #dev"] + ["[dev] alice: w%d" % i for i in range(5)]
                              + ["* carol joined #dev", "[dev] carol: after"])
            await t.expect("! some history of #dev is missing")
            await t.send("/history 4")
            await t.expect(*hist("[dev] alice: w4", "* carol joined #dev", "[dev] carol: after", "* tex joined #dev"))
            await t.expect("! some history of #dev is missing")
            # the newest 3 are all after the loss: nothing of them is missing
            await t.send("/history 3")
            await t.expect(*hist("* carol joined #dev", "[dev] carol: after", "* tex joined #dev"))
            await t.send("/history 2")
            await t.expect(*hist("[dev] carol: after", "* tex joined #dev"))
            assert after["id"] > c.join_ev["id"]
    run(phase2(), s2)


def test_ids_are_never_reused_after_sigkill(start_server, db):
    s1 = start_server("--history", db, "--history-flush-ms", "1000")
    seen = {}

    async def phase1():
        async with Pool(s1) as p:
            a = await p.jjoin("alice", "dev")
            for i in range(20):
                await a.send({"type": "message", "text": "q%d" % i})
            ids = [check_event(await a.recv_obj(), "message", text="q%d" % i)["id"] for i in range(20)]
            seen["max"], seen["epoch"] = max(ids), a.welcome["epoch"]
            s1.proc.send_signal(signal.SIGKILL)           # before the 1 s flush: nothing of it written
            assert s1.proc.wait(timeout=5) == -signal.SIGKILL
    run(phase1())
    s2 = start_server("--history", db)

    async def phase2():
        async with Pool(s2) as p:
            c = await p.jopen("carol", "dev")
            w = await c.expect_obj("welcome")
            assert w["epoch"] == seen["epoch"]
            await c.expect_obj("history")
            j = check_event(await c.recv_obj(), "join", name="carol")
            assert j["id"] > seen["max"], "id %d handed out again after a crash (had reached %d)" % (
                j["id"], seen["max"])
    run(phase2(), s2)


# ----------------------------------------------------- recovery

def test_recovery_with_since_gets_exactly_what_was_missed(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", "dev")
            b = await p.jjoin("bob", "dev")
            await a.expect_obj("join")
            await b.send({"type": "message", "text": "before"})
            last = (await a.expect_obj("message"))["id"]
            await b.expect_obj("message")
            epoch = a.welcome["epoch"]
            await a.close()
            missed = [check_event(await b.recv_obj(), "leave", name="alice")]
            # more than the replay (50) and than a history request (500)
            # can hold, with a whisper (an id, never stored) and another
            # room's events among them
            n = 600
            for i in range(n):
                await b.send({"type": "message", "text": "missed %d" % i})
            for i in range(n):
                missed.append(check_event(await b.recv_obj(), "message", text="missed %d" % i))
            t = await p.join("tex", "elsewhere")
            await t.send("hello elsewhere")
            await t.expect("[elsewhere] tex: hello elsewhere")
            await b.send({"type": "whisper", "to": "tex", "text": "psst"})
            await b.expect_obj("whisper")
            await t.expect("[whisper from bob] psst")
            await b.send({"type": "message", "text": "after the whisper"})
            missed.append(check_event(await b.recv_obj(), "message", text="after the whisper"))
            await t.send("/join dev")
            missed.append(check_event(await b.recv_obj(), "join", name="tex"))
            a2 = await p.jjoin("alice", "dev", since=last, epoch=epoch)
            assert [live_of(m) for m in a2.history] == missed, "recovery: %r" % ([m["id"] for m in a2.history],)
            assert a2.join_ev["id"] > missed[-1]["id"]
            await b.send({"type": "message", "text": "live"})
            m = check_event(await a2.recv_obj(), "message", text="live")
            assert "history" not in m and m["id"] > a2.join_ev["id"]
            # since without epoch is trusted too
            c = await p.jjoin("carol", "dev", since=missed[2]["id"])
            assert [m["id"] for m in c.history] == [e["id"] for e in missed[3:]] + [a2.join_ev["id"], m["id"]]
            # and with a join request
            d = await p.jjoin("dave")
            msgs, _ = await d.join_room("dev", since=missed[-1]["id"], epoch=epoch)
            assert [x["id"] for x in msgs] == [a2.join_ev["id"], m["id"], c.join_ev["id"]]
            # since the newest id: nothing missed, and nothing missing
            e = await p.jjoin("eve", "dev", since=2 ** 53 - 1, epoch=epoch)
            assert e.history == []
    run(body(), s)


def test_recovery_with_another_epoch_is_incomplete(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", "dev")
            await a.send({"type": "message", "text": "x"})
            m = await a.expect_obj("message")
            other = "0" if a.welcome["epoch"] != "0" else "1"
            b = await p.jjoin("bob", "dev", since=m["id"], epoch=other, complete=False)
            assert b.join_ev["id"] > m["id"]
            await a.expect_obj("join")
            c = await p.jjoin("carol")
            await c.send({"type": "join", "room": "dev", "since": 1, "epoch": "not-" + a.welcome["epoch"][:60]})
            await c.expect_history("dev", complete=False)
            check_event(await c.recv_obj(), "join", room="dev", name="carol")
    run(body(), s)


def test_recovery_below_the_pruned_range_is_incomplete(start_server, db):
    s = start_server("--history", db, "--history-max-per-room", "5")

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", "dev")
            epoch = a.welcome["epoch"]
            ids = []
            for i in range(40):
                await a.send({"type": "message", "text": "p%d" % i})
                ids.append(check_event(await a.recv_obj(), "message", text="p%d" % i)["id"])
            await asyncio.sleep(0.6)                      # flushed and pruned by now
            # within the kept range: exactly the rest, complete
            b = await p.jjoin("bob", "dev", since=ids[-3], epoch=epoch)
            assert [(m["id"], m["text"]) for m in b.history] == [(ids[-2], "p38"), (ids[-1], "p39")]
            await a.expect_obj("join")
            # below it: incomplete
            await p.jjoin("carol", "dev", since=ids[0], epoch=epoch, complete=False)
            await a.expect_obj("join")
            await asyncio.sleep(0.3)                      # the joins written, and pruned with them
            await a.send({"type": "history", "room": "dev", "limit": 20, "ref": "h"})
            got = await a.expect_history("dev", complete=False, ref="h")
            assert 1 <= len(got) <= 5, "--history-max-per-room 5 kept %d" % len(got)
    run(body(), s)


# ------------------------------------------- files and no history

def test_no_history_creates_no_file_and_answers_unavailable(tmp_path):
    srv = CliProcess(["--no-history"], cwd=str(tmp_path))
    try:
        async def body():
            async with Pool(srv) as p:
                t = await p.join("tex")
                await t.send("/history")
                await t.expect("! history is off on this server")
                j = await p.jjoin("jay", history=False)
                assert j.welcome["epoch"] is None
                await t.expect("* jay joined #lobby")
                await j.send({"type": "history", "room": "lobby", "limit": 5, "ref": "h"})
                await j.expect_error("unavailable", ref="h")
                await j.join_room("dev", history=False)
                await j.send({"type": "message", "text": "not stored"})
                await j.expect_obj("message")
                u = await p.join("ursula")                # no replay
                await t.expect("* ursula joined #lobby")
                await t.send("hi")
                await u.expect("[lobby] tex: hi")
        run(body(), srv)
    finally:
        srv.stop()
    assert os.listdir(str(tmp_path)) == [], os.listdir(str(tmp_path))


def test_default_history_file_is_wschat_db_in_the_cwd(tmp_path):
    srv = CliProcess([], cwd=str(tmp_path))
    try:
        async def body():
            async with Pool(srv) as p:
                a = await p.jjoin("alice")
                assert isinstance(a.welcome["epoch"], str)
                await a.send({"type": "message", "text": "kept"})
                await a.expect_obj("message")
        run(body(), srv)
    finally:
        srv.stop()
    path = tmp_path / "wschat.db"
    assert path.is_file(), os.listdir(str(tmp_path))
    with open(str(path), "rb") as f:
        assert f.read(16) == b"SQLite format 3\0"
    # and it is what a restart in that directory reads
    srv = CliProcess([], cwd=str(tmp_path))
    try:
        async def again():
            async with Pool(srv) as p:
                b = await p.jopen("bob")
                await b.expect_obj("welcome")
                h = await b.expect_history("lobby")
                assert "kept" in [m.get("text") for m in h], h
        run(again(), srv)
    finally:
        srv.stop()


def test_history_path_flag_moves_the_file(tmp_path):
    (tmp_path / "cwd").mkdir()
    target = tmp_path / "elsewhere.db"
    srv = CliProcess(["--history", str(target)], cwd=str(tmp_path / "cwd"))
    try:
        async def body():
            async with Pool(srv) as p:
                await p.jjoin("alice")
        run(body(), srv)
    finally:
        srv.stop()
    assert target.is_file()
    assert "wschat.db" not in os.listdir(str(tmp_path / "cwd"))


# ------------------------------------------------ the documented details

def test_epoch_is_16_hex_digits_and_compared_in_any_case(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", "dev")
            e = a.welcome["epoch"]
            assert re.fullmatch(r"[0-9a-f]{16}", e), e
            await a.send({"type": "message", "text": "x"})
            m = await a.expect_obj("message")
            b = await p.jjoin("bob", "dev", since=m["id"] - 1, epoch=e.upper())
            assert [x["id"] for x in b.history] == [m["id"]]
    run(body(), s)


def test_bad_since_at_connect_is_bad_field_and_ignored(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", "dev")
            for since in ("abc", "-1", "1.0", "9007199254740992"):
                c = await p.jopen("carl", "dev", since=since)
                w = await c.expect_obj("welcome")
                assert w["name"] == "carl", w
                c.name = "carl"
                await c.expect_error("bad_field")
                h = await c.expect_history("dev")           # the plain replay
                assert h[0]["type"] == "join" and h[0]["name"] == "alice", h
                check_event(await c.recv_obj(), "join", name="carl")
                await c.close()
                await a.expect_obj("join")
                await a.expect_obj("leave")
    run(body(), s)


def test_json_leaving_the_last_room_replays_lobby(start_server, db):
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            t = await p.join("tex")
            await t.send("lobby line")
            await t.expect("[lobby] tex: lobby line")
            a = await p.jjoin("alice", "dev")
            await a.send({"type": "leave", "room": "dev"})
            check_event(await a.recv_obj(), "leave", room="dev", name="alice")
            h = await a.expect_history("lobby")
            assert [as_text_line(live_of(m)) for m in h] == ["* tex joined #lobby", "[lobby] tex: lobby line"]
            check_event(await a.recv_obj(), "join", room="lobby", name="alice")
            await t.expect("* alice joined #lobby")
    run(body(), s)


def test_replay_zero_turns_replay_off(start_server, db):
    s = start_server("--history", db, "--history-replay", "0")

    async def body():
        async with Pool(s) as p:
            t = await p.join("tex", "dev")
            await t.send("one")
            await t.expect("[dev] tex: one")
            u = await p.join("ursula", "dev")                # no replay
            await t.expect("* ursula joined #dev")
            await t.send("two")
            await u.expect("[dev] tex: two")
            await t.expect("[dev] tex: two")
            await u.send("/history 2")                        # /history still answers
            await u.expect(*hist("* ursula joined #dev", "[dev] tex: two"))
            a = await p.jjoin("alice", "dev", history=False)   # no history object
            await a.send({"type": "leave", "room": "dev"})
            await a.expect_obj("leave")
            await a.expect_obj("join")                         # lobby, no history object
            msgs, _ = await a.join_room("dev", since=0)        # since: a history object
            assert [as_text_line(live_of(m)) for m in msgs][:3] == [
                "* tex joined #dev", "[dev] tex: one", "* ursula joined #dev"]
    run(body(), s)


def test_unannounced_joins_of_a_quiet_room_are_not_stored(start_server, db):
    s = start_server("--history", db, "--quiet-room", "2")

    async def body():
        async with Pool(s) as p:
            a = await p.join("a", "dev")
            b = await p.tjoin("b", "dev", history=["* a joined #dev"])
            await a.expect("* b joined #dev")
            c = await p.tjoin("c", "dev", history=["* a joined #dev", "* b joined #dev"])
            await a.expect_quiet()
            await c.send("hi")
            for x in (a, b, c):
                await x.expect("[dev] c: hi")
            await c.send("/history")
            await c.expect(*hist("* a joined #dev", "* b joined #dev", "[dev] c: hi"))
    run(body(), s)


def test_back_to_back_joins_keep_their_order(start_server, db):
    """Joins sent before the previous replay is out: each room's history,
    then its join, in the order asked (text and JSON); clients that drop
    while their replay is being read do no harm."""
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            lines = {}
            for name, room in (("a", "r1"), ("b", "r2")):
                c = await p.join(name, room)
                lines[room] = ["* %s joined #%s" % (name, room)]
                for i in range(30):
                    await c.send("%s line %d" % (room, i))
                    lines[room].append("[%s] %s: %s line %d" % (room, name, room, i))
                await c.expect(*lines[room][1:])
            t = await p.join("t")
            for r in ("r1", "r2", "r1"):
                await t.send("/join " + r)
            await t.expect(*hist(*lines["r1"]))
            await t.expect("* t joined #r1")
            await t.expect(*hist(*lines["r2"]))
            await t.expect("* t joined #r2")
            await t.expect(*hist(*lines["r1"], "* t joined #r1", "* t left #r1"))
            await t.expect("* t joined #r1")
            j = await p.jjoin("j")
            for r in ("r1", "r2", "r3"):
                await j.send({"type": "join", "room": r})
            await j.send({"type": "message", "room": "r1", "text": "hey"})
            for r, n in (("r1", 34), ("r2", 33), ("r3", 0)):
                assert len(await j.expect_history(r)) == n
                check_event(await j.recv_obj(), "join", room=r, name="j")
            check_event(await j.recv_obj(), "message", room="r1", text="hey")
            for i in range(50):
                c = await p.open("x%d" % i, "r1")
                c.ws.transport.abort()
            # the server outlived them (run() checks it exits cleanly)
            await asyncio.sleep(0.3)
            await j.send({"type": "rooms", "ref": "alive"})
            while (await j.recv_obj())["type"] != "rooms":
                pass                                       # r1's joins and leaves meanwhile
    run(body(), s, timeout=20)


def test_big_recovery_is_cut_by_size_and_finished_with_after(start_server, db):
    # 40 messages of 60 KiB: more than one answer holds (about 1 MiB); the
    # recovery says incomplete, and history requests with "after" page
    # forward through the rest, each answer under about 1 MiB.
    s = start_server("--history", db)
    big = "y" * (60 * 1024)

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice", "dev")
            epoch = a.welcome["epoch"]
            since = a.join_ev["id"]
            sent = []
            for i in range(40):
                await a.send({"type": "message", "text": "%02d%s" % (i, big)})
                sent.append((await a.expect_obj("message"))["id"])
            b = await p.jopen("bob", "dev", since=since, epoch=epoch)
            await b.expect_obj("welcome")
            first = await b.expect_history("dev", complete=False)
            assert 0 < len(first) < 40, len(first)
            assert len(b.last_raw) < 1100 * 1024, len(b.last_raw)
            got = [m["id"] for m in first]
            assert got == sent[:len(got)], "recovery starts with the first missed id"
            check_event(await b.recv_obj(), "join", room="dev", name="bob")
            while got[-1] != sent[-1]:
                await b.send({"type": "history", "room": "dev", "limit": 500, "after": got[-1], "ref": "more"})
                page = await b.expect_obj("history")
                assert page["ref"] == "more" and page["messages"], page.get("complete")
                assert len(b.last_raw) < 1100 * 1024
                got += [m["id"] for m in page["messages"] if m["type"] == "message"]
            assert got == sent, "paging forward with after brings back every missed message once"
            await b.send({"type": "history", "room": "dev", "limit": 5, "after": 1, "before": 9, "ref": 1})
            await b.expect_error("bad_field", ref=1)
    run(body(), s)


def test_since_is_ignored_when_the_room_is_refused(start_server, db):
    # ?since= names an id of the room asked for; an invalid ?room= puts the
    # client in lobby, whose history it must not "recover" from that id.
    s = start_server("--history", db)

    async def body():
        async with Pool(s) as p:
            a = await p.jjoin("alice")  # lobby
            await a.send({"type": "message", "text": "in lobby"})
            await a.expect_obj("message")
            b = await p.jopen("bob", "bad room!", since=999999999)
            await b.expect_obj("welcome")
            await b.expect_error("invalid_room")
            msgs = await b.expect_history("lobby")
            assert [m.get("text") for m in msgs if m["type"] == "message"] == ["in lobby"], \
                "a plain replay of lobby, not a recovery after 999999999"
            check_event(await b.recv_obj(), "join", room="lobby", name="bob")
    run(body(), s)
