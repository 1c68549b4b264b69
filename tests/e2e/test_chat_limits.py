"""Limits on what one client may make the server send (issue 10, defect 3).

A rendered line must never exceed what the server accepts: chat text is at
most --max-line bytes (default 64 KiB), and never more than what renders
within --max-message ((max-message - 256) / 6: a JSON client may get every
byte escaped as \\u00XX); a longer line gets "! line too long (at most N
bytes)" (JSON: an error too_long) and nothing is broadcast. A /quit reason
is cut to 123 bytes (what a close frame holds) at a character's start.
"""
import json
import subprocess

import pytest

import conftest
from chatclient import Clients, run, say

JSON = ["wschat.v1.json"]


def test_line_at_max_line_is_said_one_byte_more_is_refused(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await say(alice, "a" * 65536, bob)
            await alice.send("b" * 65537)
            await alice.expect("! line too long (at most 65536 bytes)")
            await say(alice, "sentinel", bob)      # bob got nothing in between
    run(body(), chat_server)


def test_a_line_of_max_message_never_reaches_others_over_their_limit(start_server):
    """The attack of defect 3: a line of exactly --max-message was taken and
    broadcast with its "[room] name: " prefix, larger than the limit, so a
    client with the same limit (websockets' max_size) was cut off (1009)."""
    server = start_server("--max-message", "1000")

    async def body():
        async with Clients(server) as c:
            alice = await c.join("alice")
            bob = await c.join("bob", max_size=1000)
            await alice.expect("* bob joined #lobby")
            for text in ("a" * 1000, "/me " + "a" * 996, "/w bob " + "a" * 993):
                await alice.send(text)
                await alice.expect("! line too long (at most 124 bytes)")
            await say(alice, "x" * 124, bob)
            await say(alice, "still here", bob)
    run(body(), server)


def test_max_line_flag_counts_the_whole_message(start_server):
    server = start_server("--max-line", "12")

    async def body():
        async with Clients(server) as c:
            alice, bob = await c.room(["alice", "bob"])
            await say(alice, "\u00e9" * 6, bob)                 # 12 bytes, 6 characters
            await alice.send("\u00e9" * 6 + "!")
            await alice.expect("! line too long (at most 12 bytes)")
            await alice.send("/me is bored")                    # 12 bytes, command included
            for u in (alice, bob):
                await u.expect("* alice is bored")
            await alice.send("/me is boring")
            await alice.expect("! line too long (at most 12 bytes)")
            await say(alice, "sentinel", bob)
    run(body(), server)


@pytest.mark.parametrize("bad", ["0", "-1", "lots", "2147483649"])
def test_max_line_out_of_range_is_refused(bad):
    r = subprocess.run([conftest.CLI, "--port", "0", "--no-history", "--max-line", bad],
                       capture_output=True, text=True, timeout=5)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)


def test_json_text_limit_is_max_line(start_server):
    server = start_server("--max-line", "10")

    async def body():
        async with Clients(server) as c:
            alice = await c.open("alice", subprotocols=JSON)
            assert json.loads(await alice.recv())["type"] == "welcome"
            assert json.loads(await alice.recv())["type"] == "join"
            for kind, extra in (("message", {}), ("whisper", {"to": "alice"})):
                req = dict({"type": kind, "text": "x" * 11, "ref": kind}, **extra)
                await alice.send(json.dumps(req))
                err = json.loads(await alice.recv())
                assert err["type"] == "error" and err["code"] == "too_long", err
                assert err["ref"] == kind and "10 bytes" in err["message"], err
            await alice.send(json.dumps({"type": "message", "text": "x" * 10}))
            got = json.loads(await alice.recv())
            assert got["type"] == "message" and got["text"] == "x" * 10, got
    run(body(), server)


def test_quit_reason_is_cut_to_what_a_close_frame_holds(chat_server):
    async def body():
        async with Clients(chat_server) as c:
            alice, bob, carol = await c.room(["alice", "bob", "carol"])
            await alice.send("/quit " + "r" * 5000)
            await alice.expect_closed(1000)
            for u in (bob, carol):
                await u.expect("* alice left #lobby (%s)" % ("r" * 123))
            # Cut at a character's start: 61 two-byte characters are 122 bytes.
            await bob.send("/quit " + "\u00e9" * 100)
            await bob.expect_closed(1000)
            await carol.expect("* bob left #lobby (%s)" % ("\u00e9" * 61))
            await say(carol, "sentinel")
    run(body(), chat_server)
