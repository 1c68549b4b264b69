"""Deploys without reconnect storms (issue 10, operations): on SIGTERM
chat-cli stops accepting, then closes its clients in batches spread over
--drain-seconds with 1012 "service restart"; a second SIGTERM closes the
rest at once with 1001.  --drain-seconds 0 (what conftest passes unless a
test sets the flag) is the immediate path, tested in test_lifecycle.py.
"""
import signal
import threading
import time

import pytest

from wsraw import OP_CLOSE, RawWS, connect_tcp


def chatter(server, name):
    ws = RawWS.open(server, path="/?name=%s" % name, timeout=3)
    op, line = ws.recv_message()
    assert line.startswith(b"* welcome, %s!" % name.encode()), line
    return ws


def watch(clients, timeout):
    """One thread per client: waits for the server's close frame (skipping
    anything before), answers it, and records (time, code, reason)."""
    got = [None] * len(clients)

    def one(i, ws):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                f = ws.recv_frame(max(0.01, deadline - time.monotonic()))
            except Exception as e:  # noqa: BLE001 - recorded for the assertion
                got[i] = (time.monotonic(), None, repr(e))
                return
            if f.opcode == OP_CLOSE:
                got[i] = (time.monotonic(), f.close_code, f.close_reason)
                try:
                    ws.send_close(f.close_code)
                except OSError:
                    pass
                return

    threads = [threading.Thread(target=one, args=(i, ws), daemon=True) for i, ws in enumerate(clients)]
    for t in threads:
        t.start()
    return got, threads


def refused(server):
    try:
        s = connect_tcp(server.host, server.port, 1.0)
    except (ConnectionRefusedError, OSError):
        return True
    s.close()
    return False


def test_sigterm_drains_in_batches_with_1012(start_server):
    s = start_server("--drain-seconds", "2", "--max-per-ip", "0")
    clients = [chatter(s, "c%02d" % i) for i in range(20)]
    got, threads = watch(clients, timeout=8)
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert refused(s), "a new connection was accepted during the drain"
    rc = s.proc.wait(timeout=10)
    elapsed = time.monotonic() - t0
    for t in threads:
        t.join(5)
    assert rc == 0, s.stderr_text()
    assert all(g is not None for g in got), got
    assert [(g[1], g[2]) for g in got] == [(1012, b"service restart")] * 20, got
    times = sorted(g[0] - t0 for g in got)
    # Spread over the 2 s (a batch every 100 ms), not all at once.
    assert times[0] < 0.6, times
    assert times[-1] - times[0] > 1.2, times
    assert sum(1 for t in times if t < 0.5) <= 6, times
    assert 1.5 < elapsed < 6, elapsed
    for c in clients:
        c.close()


def test_clients_chat_on_until_their_batch(start_server):
    s = start_server("--drain-seconds", "3")
    a, b = chatter(s, "alice"), chatter(s, "bob")
    op, line = a.recv_message()
    assert line == b"* bob joined #lobby"
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    # 2 clients over 30 batches: the first goes at 1.5 s, the second at 3 s.
    b.send_text("still here")
    for ws in (a, b):
        op, line = ws.recv_message(timeout=2)
        assert line == b"[lobby] bob: still here"
    got, threads = watch([a, b], timeout=8)
    assert s.proc.wait(timeout=10) == 0
    for t in threads:
        t.join(5)
    assert sorted(g[1] for g in got) == [1012, 1012], got
    for ws in (a, b):
        ws.close()


def test_second_sigterm_closes_the_rest_with_1001(start_server):
    s = start_server("--drain-seconds", "10", "--max-per-ip", "0")
    clients = [chatter(s, "c%02d" % i) for i in range(10)]
    got, threads = watch(clients, timeout=8)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(1.4)  # one client goes at 1 s (10 over 100 batches)
    t1 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(timeout=5)
    for t in threads:
        t.join(5)
    assert rc == 0, s.stderr_text()
    codes = [g[1] for g in got]
    assert set(codes) <= {1012, 1001}, got
    assert 1 <= codes.count(1012) <= 2, codes
    assert all(g[0] - t1 < 1.5 for g in got if g[1] == 1001), got
    for c in clients:
        c.close()


def test_idle_server_drains_at_once(start_server):
    s = start_server("--drain-seconds", "10")
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=5) == 0
    assert time.monotonic() - t0 < 2


@pytest.mark.parametrize("bad", ["-1", "abc", "100000"])
def test_bad_drain_seconds_exits_2(bad):
    import subprocess
    from conftest import CLI
    r = subprocess.run([CLI, "--drain-seconds", bad], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "--drain-seconds" in r.stderr, r
