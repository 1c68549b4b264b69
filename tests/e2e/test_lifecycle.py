"""chat-cli as a process: flags, start line, signals, timers, backpressure,
misbehaving peers and many peers.

Timings use fractional seconds (--handshake-timeout 0.5, --ping-interval 0.3)
so that every test finishes in a few seconds; the upper bounds are generous,
the lower bounds only check that a timer did not fire early.
"""
import asyncio
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest
import websockets

import conftest
import wsraw
from wsraw import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, RawWS, encode_frame
from wsutil import echo_latencies


def run(coro, timeout=8):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def connect(url, **kw):
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 2)
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    return websockets.connect(url, **kw)


def cli(*args, timeout=5):
    """Run chat-cli to completion (for flags that must not start a server)."""
    try:
        return subprocess.run([conftest.CLI] + list(args), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("chat-cli %s did not exit within %s s (did it start a server?)" % (" ".join(args), timeout))


def open_fds(server):
    return len(os.listdir("/proc/%d/fd" % server.proc.pid))


def settled_fds(server, timeout=2.0):
    """The server's fd count once it stopped changing for 0.2 s (connections
    that just ended are released first)."""
    deadline = time.monotonic() + timeout
    last = open_fds(server)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        n = open_fds(server)
        if n == last:
            return n
        last = n
    return last


def wait_fds(server, target, timeout=3.0):
    """Poll until the server holds at most `target` fds; return the last count."""
    deadline = time.monotonic() + timeout
    while True:
        n = open_fds(server)
        if n <= target or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def echo_ok(server, payload=b"healthy?"):
    with RawWS.open(server, timeout=3) as ws:
        ws.send_frame(OP_BINARY, payload)
        assert ws.recv_message() == (OP_BINARY, payload)


@pytest.fixture
def server(start_server):
    s = start_server("--echo")
    yield s
    assert s.alive(), "chat-cli died during the test"


# --- flags ------------------------------------------------------------------------

FLAG_DEFAULTS = [
    ("--host", "127.0.0.1"),
    ("--port", "8765"),
    ("--max-message", "1048576"),
    ("--max-output", "1048576"),
    ("--max-header", "8192"),
    ("--handshake-timeout", "10"),
    ("--ping-interval", "20"),
    ("--ping-timeout", "20"),
    ("--drain-seconds", "10"),
]


def test_help_lists_every_flag_with_its_default():
    r = cli("--help")
    assert r.returncode == 0, r
    out = r.stdout
    for flag in ("--echo", "--help", "--version") + tuple(f for f, _ in FLAG_DEFAULTS):
        assert re.search(re.escape(flag) + r"\b", out), "--help does not mention %s:\n%s" % (flag, out)
    lines = out.splitlines()
    for flag, default in FLAG_DEFAULTS:
        # The flag's entry: its line plus continuation lines up to the next flag.
        i = next(i for i, l in enumerate(lines) if re.search(re.escape(flag) + r"\b", l))
        block = [lines[i]]
        for l in lines[i + 1:]:
            if l.strip().startswith("-"):
                break
            block.append(l)
        assert re.search(r"(?<![\d.])" + re.escape(default) + r"(?![\d])", " ".join(block)), \
            "default %s of %s not in its --help entry: %r" % (default, flag, block)


def test_version():
    r = cli("--version")
    assert r.returncode == 0, r
    assert re.search(r"\d+\.\d+", r.stdout), r.stdout
    assert len(r.stdout.strip().splitlines()) == 1, r.stdout


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["--port", "0", "extra-positional-argument"],
    ["--port"],
    ["--port", "abc"],
    ["--port", "70000"],
    ["--port", "-1"],
    ["--port", "0", "--max-message", "lots"],
    ["--port", "0", "--max-message", "-5"],
    ["--port", "0", "--max-output", "1e"],
    ["--port", "0", "--max-header", "12abc"],
    ["--port", "0", "--handshake-timeout", "soon"],
    ["--port", "0", "--handshake-timeout", "-1"],
    ["--port", "0", "--ping-interval", "x"],
    ["--port", "0", "--ping-timeout", "-3"],
    ["--port", "0", "--host"],
], ids=lambda a: " ".join(a))
def test_bad_flag_or_value_exits_2_with_one_line(args):
    r = cli(*args, timeout=3)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "", "nothing on stdout (no start line) for a bad flag: %r" % r.stdout
    err = r.stderr.strip()
    assert err and "\n" not in err, "expected a one-line error on stderr, got %r" % r.stderr


def test_start_line_is_the_only_stdout_line(start_server):
    s = start_server("--echo")
    assert s.host == "127.0.0.1"
    assert 0 < s.port < 65536
    assert s.url == "ws://127.0.0.1:%d/" % s.port
    echo_ok(s)
    assert s.terminate() == 0
    rest = s.proc.stdout.read()
    assert rest == "", "more stdout after the start line: %r" % rest


def test_port_0_gives_distinct_free_ports(start_server):
    a, b = start_server("--echo"), start_server("--echo")
    assert a.port != b.port
    echo_ok(a)
    echo_ok(b)


def test_chat_mode_starts_and_accepts_websocket(start_server):
    s = start_server()
    with RawWS.open(s, timeout=3):
        pass
    assert s.alive()


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as t:
            t.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_host(start_server):
    s = start_server("--echo", host="::1")
    assert s.host == "::1"
    assert s.url == "ws://[::1]:%d/" % s.port

    async def go():
        async with connect(s.url) as ws:
            await ws.send("over ipv6")
            assert await asyncio.wait_for(ws.recv(), 3) == "over ipv6"
    run(go())
    assert s.terminate() == 0


# --- signals ------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_every_client_with_1001_and_exits_0(start_server, sig):
    # --drain-seconds 0: the immediate path (a drain has tests of its own,
    # test_drain.py).
    s = start_server("--echo", "--drain-seconds", "0")

    async def go():
        lib = await connect(s.url)
        raw = RawWS.open(s, timeout=4)
        mute = RawWS.open(s, timeout=4)          # reads the close but never answers it
        pending = wsraw.connect_tcp(s.host, s.port, 4)  # TCP only, no handshake yet
        try:
            await lib.send("before")
            assert await asyncio.wait_for(lib.recv(), 3) == "before"
            t = time.monotonic()
            s.proc.send_signal(sig)
            raw.expect_close(1001, timeout=4)
            f = mute.recv_frame(timeout=4)
            assert f.opcode == OP_CLOSE and f.close_code == 1001, f
            await asyncio.wait_for(lib.wait_closed(), 4)
            assert lib.close_code == 1001
            _, closed = wsraw.read_until_eof(pending, 4)
            assert closed, "a connection still in its handshake was not closed"
            code = await asyncio.get_running_loop().run_in_executor(None, lambda: s.proc.wait(6))
            assert code == 0
            assert time.monotonic() - t < 5, "exit took %.1f s" % (time.monotonic() - t)
            assert mute.wait_eof(1)
        finally:
            raw.close()
            mute.close()
            pending.close()
    run(go(), 15)


def test_sigterm_idle_server_exits_0_quickly(start_server):
    s = start_server("--echo")
    t = time.monotonic()
    assert s.terminate(timeout=5) == 0
    assert time.monotonic() - t < 2


# --- handshake timeout ------------------------------------------------------------------

@pytest.fixture
def hs_server(start_server):
    s = start_server("--echo", "--handshake-timeout", "0.5")
    yield s
    assert s.alive()


def time_until_closed(sock, limit):
    t = time.monotonic()
    _, closed = wsraw.read_until_eof(sock, limit)
    return closed, time.monotonic() - t


def test_silent_tcp_client_dropped_after_handshake_timeout(hs_server):
    sock = wsraw.connect_tcp(hs_server.host, hs_server.port, 3)
    try:
        closed, elapsed = time_until_closed(sock, 3)
    finally:
        sock.close()
    assert closed, "a client that never sent its request was not dropped"
    assert 0.4 <= elapsed <= 2.5, elapsed


def test_incomplete_request_dropped_after_handshake_timeout(hs_server):
    sock = wsraw.connect_tcp(hs_server.host, hs_server.port, 3)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        closed, elapsed = time_until_closed(sock, 3)
    finally:
        sock.close()
    assert closed and elapsed <= 2.5, elapsed


def test_slowloris_dropped_although_bytes_keep_coming(hs_server):
    # One byte every 0.1 s: the handshake timeout bounds the whole request,
    # it is not an idle timer that each byte resets.
    request = wsraw.upgrade_request("x") + b"X-Pad: " + b"p" * 200
    sock = wsraw.connect_tcp(hs_server.host, hs_server.port, 3)
    t = time.monotonic()
    closed = False
    try:
        for b in request:
            try:
                sock.sendall(bytes([b]))
            except OSError:
                closed = True
                break
            r, _, _ = select.select([sock], [], [], 0.1)
            if r:
                try:
                    if sock.recv(4096) == b"":
                        closed = True
                        break
                except OSError:
                    closed = True
                    break
            if time.monotonic() - t > 3:
                break
    finally:
        sock.close()
    assert closed, "a slowloris client survived %.1f s with --handshake-timeout 0.5" % (time.monotonic() - t)
    assert time.monotonic() - t <= 2.5


def test_handshake_timeout_does_not_apply_after_upgrade(hs_server):
    async def go():
        async with connect(hs_server.url) as ws:
            await asyncio.sleep(1.2)
            await ws.send("still open")
            assert await asyncio.wait_for(ws.recv(), 3) == "still open"
    run(go())


def test_default_handshake_timeout_is_not_short(server):
    sock = wsraw.connect_tcp(server.host, server.port, 3)
    try:
        r, _, _ = select.select([sock], [], [], 1.0)
        assert not r, "silent client dropped within 1 s although the default is 10 s"
    finally:
        sock.close()


def test_server_healthy_after_many_timeouts(hs_server):
    socks = [wsraw.connect_tcp(hs_server.host, hs_server.port, 3) for _ in range(20)]
    try:
        for s in socks:
            _, closed = wsraw.read_until_eof(s, 3)
            assert closed
    finally:
        for s in socks:
            s.close()
    echo_ok(hs_server)


# --- ping interval / timeout ------------------------------------------------------------

@pytest.fixture
def ping_server(start_server):
    s = start_server("--echo", "--ping-interval", "0.3", "--ping-timeout", "0.3")
    yield s
    assert s.alive()


def test_peer_that_never_answers_pings_is_closed_1011(ping_server):
    # From before the connect: the server's interval starts during the
    # handshake, which a loaded machine may stretch on our side.
    t = time.monotonic()
    with RawWS.open(ping_server, timeout=3) as ws:
        f = ws.recv_frame(timeout=2)
        assert f.opcode == OP_PING and not f.masked and f.fin and len(f.payload) <= 125, f
        first_ping = time.monotonic() - t
        assert first_ping >= 0.2, "ping after %.2f s with --ping-interval 0.3" % first_ping
        while True:  # further pings may come before the verdict; none is answered
            f = ws.recv_frame(timeout=max(0.01, 2.5 - (time.monotonic() - t)))
            if f.opcode != OP_PING:
                break
        assert f.opcode == OP_CLOSE and f.close_code == 1011, f
        assert ws.wait_eof(2), "no TCP close after the 1011"
        elapsed = time.monotonic() - t
    assert 0.5 <= elapsed <= 3.0, elapsed


def test_half_open_peer_does_not_leak(ping_server):
    echo_ok(ping_server)
    base = settled_fds(ping_server)
    silent = [RawWS.open(ping_server, timeout=3) for _ in range(10)]
    try:
        assert open_fds(ping_server) >= base + 10
        # The peers never read nor answer: the server must let go of all of them.
        # 0.6 s to the 1011, then at most the close timeout (default 3 s) for the peer's close.
        n = wait_fds(ping_server, base, timeout=6)
        assert n <= base, "server still holds %d fds (baseline %d) for dead peers" % (n, base)
    finally:
        for w in silent:
            w.close()
    echo_ok(ping_server)


def test_raw_peer_answering_pings_stays_open(ping_server):
    with RawWS.open(ping_server, timeout=3) as ws:
        pings = 0
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            try:
                f = ws.recv_frame(timeout=max(0.01, end - time.monotonic()))
            except socket.timeout:
                break
            assert f.opcode == OP_PING, f
            pings += 1
            ws.send_frame(OP_PONG, f.payload)
        assert pings >= 2, "only %d pings in 1.5 s with --ping-interval 0.3" % pings
        ws.send_text(b"alive")
        while True:
            f = ws.recv_frame(timeout=2)
            if f.opcode == OP_PING:
                ws.send_frame(OP_PONG, f.payload)
                continue
            assert (f.opcode, f.payload) == (OP_TEXT, b"alive"), f
            break


def test_websockets_client_answering_pings_stays_open(ping_server):
    async def go():
        async with connect(ping_server.url) as ws:
            await asyncio.sleep(1.5)
            await ws.send("still here")
            assert await asyncio.wait_for(ws.recv(), 3) == "still here"
            assert ws.close_code is None
    run(go())


def test_no_ping_while_the_peer_is_talking(ping_server):
    # Pings are sent after --ping-interval of silence; traffic resets the clock.
    with RawWS.open(ping_server, timeout=3) as ws:
        end = time.monotonic() + 1.2
        i = 0
        while time.monotonic() < end:
            ws.send_frame(OP_BINARY, b"%d" % i)
            f = ws.recv_frame(timeout=2)
            assert (f.opcode, f.payload) == (OP_BINARY, b"%d" % i), f
            i += 1
            time.sleep(0.1)


# --- slow consumer ----------------------------------------------------------------------

def test_slow_consumer_closed_1008_others_unaffected(start_server):
    s = start_server("--echo", "--max-output", "65536")
    victim = RawWS.open(s, timeout=3, rcvbuf=4096)
    victim.sock.settimeout(0.5)
    chunk = encode_frame(OP_BINARY, b"\xab" * 65536)
    sent = {"bytes": 0, "stop": None}

    def flood():
        # Much more than --max-output plus every kernel buffer, never reading.
        try:
            for _ in range(256):  # 16 MiB
                victim.sock.sendall(chunk)
                sent["bytes"] += len(chunk)
            sent["stop"] = "sent everything"
        except socket.timeout:
            sent["stop"] = "server stopped reading"
        except OSError as e:
            sent["stop"] = "send error %r" % e

    th = threading.Thread(target=flood, daemon=True)
    latencies = []

    async def bystander():
        async with connect(s.url) as ws:
            th.start()
            latencies.extend(await echo_latencies(ws, th.is_alive))
            await asyncio.get_running_loop().run_in_executor(None, th.join, 10)

    try:
        run(bystander(), 15)
        assert max(latencies) < 0.5, "the other client was slowed: %r" % max(latencies)
        # Now read what the server queued for us: some echoes, then close 1008.
        frames = 0
        deadline = time.monotonic() + 6
        while True:
            f = victim.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
            if f.opcode == OP_CLOSE:
                break
            assert f.opcode in (OP_BINARY, wsraw.OP_CONT), f
            frames += 1
        assert f.close_code == 1008, f
        assert f.close_reason == b"slow consumer", f
        assert victim.wait_eof(3)
        assert sent["bytes"] > 65536, sent
    finally:
        victim.close()
    assert s.alive()
    echo_ok(s)


def test_fast_reader_not_closed_under_max_output(start_server):
    # The same volume, read as it comes: no 1008.
    s = start_server("--echo", "--max-output", "65536")
    payload = os.urandom(60000)
    with RawWS.open(s, timeout=3) as ws:
        for _ in range(100):
            ws.send_frame(OP_BINARY, payload)
            assert ws.recv_message() == (OP_BINARY, payload)


@pytest.mark.parametrize("count,size", [(100, 1000), (3, 30000)])
def test_pipelined_messages_from_a_reading_peer_are_not_a_slow_consumer(start_server, count, size):
    # The peer sends `count` messages in one write, then reads at once.  Their
    # echoes (~100 KB) fit in the kernel's socket buffers, so nothing needs to
    # stay queued: a server that counts output against --max-output before even
    # trying to write it closes a perfectly fast reader as a "slow consumer".
    s = start_server("--echo", "--max-output", "65536")
    payloads = [bytes([i % 256]) * size for i in range(count)]
    with RawWS.open(s, timeout=3) as ws:
        ws.send(b"".join(encode_frame(OP_BINARY, p) for p in payloads))
        for i, p in enumerate(payloads):
            f = ws.recv_frame()
            assert (f.opcode, f.payload) == (OP_BINARY, p), "message %d of %d: got %r" % (i, count, f)


def test_sigterm_exits_although_a_peer_never_reads(start_server):
    # The 1001 cannot reach a peer whose receive window is full; exit anyway.
    s = start_server("--echo", "--drain-seconds", "0")
    stuck = RawWS.open(s, timeout=3, rcvbuf=4096)
    try:
        stuck.sock.settimeout(1)
        try:
            for _ in range(12):
                stuck.send_frame(OP_BINARY, b"\x00" * 65536)
        except (socket.timeout, OSError):
            pass
        time.sleep(0.2)
        t = time.monotonic()
        assert s.terminate(timeout=8) == 0
        assert time.monotonic() - t < 5
    finally:
        stuck.close()


# --- peers that vanish --------------------------------------------------------------------

@pytest.mark.parametrize("cut", ["header-half", "length-half", "mask-half", "payload-half"])
@pytest.mark.parametrize("how", ["fin", "rst"])
def test_disconnect_mid_frame_leaves_server_healthy(server, cut, how):
    frame = encode_frame(OP_TEXT, b"z" * 300)  # 2 + 2 + 4 + 300 bytes
    upto = {"header-half": 1, "length-half": 3, "mask-half": 6, "payload-half": 150}[cut]
    with RawWS.open(server, timeout=3) as other:
        base = settled_fds(server)
        ws = RawWS.open(server, timeout=3)
        ws.send(frame[:upto])
        time.sleep(0.05)
        ws.abort() if how == "rst" else ws.close()
        assert wait_fds(server, base) <= base, "connection not released"
        other.send_text(b"unaffected")
        assert other.recv_message() == (OP_TEXT, b"unaffected")
    echo_ok(server)


def test_disconnect_mid_fragmented_message(server):
    ws = RawWS.open(server, timeout=3)
    ws.send_frame(OP_TEXT, b"part 1", fin=False)
    ws.send_frame(wsraw.OP_CONT, b"part 2", fin=False)
    ws.close()
    ws = RawWS.open(server, timeout=3)
    ws.send_frame(OP_BINARY, b"part 1", fin=False)
    ws.abort()
    time.sleep(0.05)
    echo_ok(server)


def test_reset_while_server_is_writing(server):
    # The server is still sending the echo of 1 MiB when the peer resets:
    # its write fails with EPIPE/ECONNRESET, which must not kill it (SIGPIPE).
    for _ in range(3):
        ws = RawWS.open(server, timeout=3, rcvbuf=4096)
        ws.send_frame(OP_BINARY, os.urandom(1 << 20))
        time.sleep(0.1)
        ws.abort()
    time.sleep(0.1)
    assert server.alive()
    echo_ok(server)


def test_connections_ended_every_way_do_not_leak(server):
    echo_ok(server)
    base = settled_fds(server)
    for i in range(30):
        kind = i % 6
        if kind == 0:  # clean close handshake
            ws = RawWS.open(server, timeout=3)
            ws.send_close(1000)
            ws.expect_close(1000, reply=False)
            ws.close()
        elif kind == 1:  # protocol error
            ws = RawWS.open(server, timeout=3)
            ws.send_frame(OP_TEXT, b"x", rsv=1)
            ws.expect_close(1002)
            ws.close()
        elif kind == 2:  # FIN without close frame
            RawWS.open(server, timeout=3).close()
        elif kind == 3:  # RST
            RawWS.open(server, timeout=3).abort()
        elif kind == 4:  # refused handshake
            wsraw.http_exchange(server.host, server.port, b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
        else:  # gone during the handshake
            sock = wsraw.connect_tcp(server.host, server.port, 3)
            sock.sendall(b"GET / HT")
            sock.close()
    n = wait_fds(server, base)
    assert n <= base, "fds: %d before, %d after 30 finished connections" % (base, n)
    echo_ok(server)


# --- many peers ---------------------------------------------------------------------------

def test_200_concurrent_connections_echo_correctly(start_server):
    # 200 from one address: past the default --max-per-ip (64), so lifted
    server = start_server("--echo", "--max-per-ip", "0")
    echo_ok(server)
    base = settled_fds(server)
    n = 200

    async def one(i, connected, start):
        async with connect(server.url, open_timeout=8) as ws:
            connected.append(i)
            await start.wait()  # all 200 are open at the same time
            for j in range(3):
                msg = "client %d message %d " % (i, j) + "x" * (i * 7)
                await ws.send(msg)
                assert await asyncio.wait_for(ws.recv(), 5) == msg
            return i

    async def go():
        connected, start = [], asyncio.Event()
        tasks = [asyncio.ensure_future(one(i, connected, start)) for i in range(n)]
        deadline = time.monotonic() + 8
        while len(connected) < n and not any(t.done() for t in tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(connected) == n, "only %d of %d connected" % (len(connected), n)
        assert open_fds(server) >= base + n
        start.set()
        return await asyncio.gather(*tasks)

    t = time.monotonic()
    assert run(go(), 20) == list(range(n))
    assert time.monotonic() - t < 8
    assert wait_fds(server, base) <= base
    echo_ok(server)


def test_sigterm_with_50_clients(start_server):
    s = start_server("--echo", "--drain-seconds", "0")

    async def go():
        clients = [await connect(s.url) for _ in range(50)]
        for c in clients:
            await c.send("hi")
            assert await asyncio.wait_for(c.recv(), 3) == "hi"
        s.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in clients)), 5)
        assert [c.close_code for c in clients] == [1001] * 50
        code = await asyncio.get_running_loop().run_in_executor(None, lambda: s.proc.wait(5))
        assert code == 0
    run(go(), 15)
