"""The embedding example (examples/roll.c) as a user runs it: its /roll
command through on_message, its timer announcements through broadcast, the
built-in chat beside them, and a clean exit (uv_loop_close() == 0) on SIGTERM."""
import asyncio
import os
import re
import signal
import subprocess

import pytest
import websockets

ROLL = os.environ.get("WSCHAT_ROLL", os.path.join(os.path.dirname(__file__), "..", "..", "build", "examples", "roll"))


@pytest.fixture
def roll():
    p = subprocess.Popen([ROLL, "0", "300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        m = re.match(r"listening on ws://127\.0\.0\.1:(\d+)/$", p.stdout.readline().strip())
        assert m, "no start line"
        yield p, "ws://127.0.0.1:%s/" % m.group(1)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=5)
        p.stdout.close()
        p.stderr.close()


async def next_matching(ws, pattern, timeout=3):
    async def go():
        while True:
            line = await ws.recv()
            if re.fullmatch(pattern, line):
                return line
    return await asyncio.wait_for(go(), timeout)


def test_roll_command_and_announcements(roll):
    proc, url = roll

    async def go():
        async with websockets.connect(url + "?name=alice") as a, websockets.connect(url + "?name=bob") as b:
            await a.send("/roll 20")
            for ws in (a, b):  # the whole room sees the roll
                line = await next_matching(ws, r"\* alice rolls a d20: \d+")
                assert 1 <= int(line.rsplit(" ", 1)[1]) <= 20
            await a.send("/roll 1")
            assert await next_matching(a, r"!.*") == "! usage: /roll [SIDES] (2 to 1000)"
            await a.send("/rollover")  # not /roll: the chat's own answer
            assert await next_matching(a, r"!.*") == "! unknown command /rollover, try /help"
            await a.send("plain line")  # the built-in chat still works
            assert await next_matching(b, r"\[lobby\].*") == "[lobby] alice: plain line"
            first = await next_matching(b, r"\* announcement #\d+ from the host")
            second = await next_matching(b, r"\* announcement #\d+ from the host")
            assert int(second.split("#")[1].split()[0]) == int(first.split("#")[1].split()[0]) + 1

    asyncio.run(go())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0, proc.stderr.read()


def test_clients_get_1001_when_the_host_shuts_down(roll):
    proc, url = roll

    async def go():
        async with websockets.connect(url) as a:
            await a.recv()
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(a.recv(), 5)
            assert a.close_code == 1001

    asyncio.run(go())
    assert proc.wait(timeout=10) == 0, proc.stderr.read()
