"""Cluster mode (issue 11), a node's own behaviour, beside test_cluster.py
(the issue's proof, three nodes): what a node does when Redis is not there
when it starts, its --node-id in Redis, its /metrics series, and a clean
shutdown (SIGTERM) that tells the other nodes' members of each leave once.

A real redis-server (Debian's) on a free loopback port, without
persistence, stopped at the end of each test. Without cluster mode these
tests fail (chat-cli refuses --redis), never skip.
"""
import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from chatclient import Clients, assert_clean_exit, run
from conftest import Server
from test_metrics import scrape

REDIS_SERVER = os.environ.get("WSCHAT_REDIS_SERVER", "/usr/bin/redis-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """redis-server on a free port; start() again after stop() on the same port."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="wschat-redis-")
        self.proc = None
        self.url = "redis://127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("redis-server did not answer on port %d" % self.port)

    def command(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            out = b"*%d\r\n" % len(args) + b"".join(
                b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
            s.sendall(out)
            return s.recv(65536)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.cleanup()


def node(redis, *args):
    return Server(["--redis", redis.url, "--rate", "0"] + list(args))


def cluster_up(server):
    return scrape(server).samples.get(("wschat_cluster_up", ()), None)


def wait_for(what, cond, bound=5.0):
    deadline = time.monotonic() + bound
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_node_id_heartbeat_and_metrics(redis):
    redis.start()
    n = node(redis, "--node-id", "node-a")
    try:
        wait_for("node-a's heartbeat key in Redis",
                 lambda: b"1" in redis.command("EXISTS", "wschat:hb:node-a"))
        wait_for("wschat_cluster_up 1", lambda: cluster_up(n) == 1)
        names = {k[0] for k in scrape(n).samples}
        for want in ("wschat_cluster_reconnects_total", "wschat_cluster_outage_seconds_total",
                     "wschat_cluster_gaps_total", "wschat_cluster_local_only_total"):
            assert want in names, (want, sorted(x for x in names if "cluster" in x))
    finally:
        assert_clean_exit(n)
    # a clean stop takes its heartbeat out at once
    wait_for("node-a's key gone after SIGTERM",
             lambda: b":0" in redis.command("EXISTS", "wschat:hb:node-a"), 2.0)


def test_a_node_started_before_redis_serves_alone_then_joins(redis):
    n1 = node(redis)
    try:
        async def alone():
            async with Clients(n1) as c:
                a = await c.join("alice", "dev")      # waited at most 2 s for Redis
                await a.send("hello")
                await a.expect("[dev] alice: hello")  # local members are served
        run(alone())
        assert cluster_up(n1) == 0
        redis.start()
        wait_for("n1 reconnects", lambda: cluster_up(n1) == 1, 5.0)
        n2 = node(redis)
        try:
            async def together():
                async with Clients(n1) as c1, Clients(n2) as c2:
                    a = await c1.join("alice", "dev")
                    b = await c2.join("bob", "dev")
                    await a.expect("* bob joined #dev")
                    await b.send("hi")
                    await b.expect("[dev] bob: hi")
                    await a.expect("[dev] bob: hi")
            run(together(), n1, n2)
        finally:
            n2.stop()
    finally:
        n1.stop()


def test_a_clean_shutdown_tells_the_other_nodes_once(redis):
    redis.start()
    n1 = node(redis, "--drain-seconds", "0")
    n2 = node(redis)
    try:
        async def body():
            async with Clients(n2) as c2:
                c1 = Clients(n1)
                a = await c1.join("alice", "dev")
                await c1.join("carl", "dev")
                b = await c2.join("bob", "dev")
                await a.expect("* carl joined #dev", "* bob joined #dev")
                await asyncio.to_thread(assert_clean_exit, n1)
                got = sorted([await b.recv(), await b.recv()])
                assert got == ["* alice left #dev", "* carl left #dev"], got
                await b.expect_quiet(1.0)       # once, not again from a reaper
                await b.send("/users *")
                await b.expect("* users: bob (#dev)")
        run(body(), n2)
    finally:
        n1.stop()
        n2.stop()
