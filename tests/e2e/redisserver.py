"""A real redis-server (Debian's) for the cluster tests (test_cluster.py).

RedisServer starts /usr/bin/redis-server (or $WSCHAT_REDIS_SERVER) on a
free loopback port with no persistence (--save '' --appendonly no) in a
temporary directory, and waits (bounded) until it answers PING. It can be
stopped (SIGTERM, or SIGKILL for a crash) and started again on the same
port, for the outage tests; stop() at the end removes everything.

command() speaks just enough RESP (the Redis protocol) over a plain socket
to ask Redis something (INFO, CLIENT LIST) without a client library.

The `redis` fixture is a RedisServer stopped at teardown.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

REDIS_SERVER = os.environ.get("WSCHAT_REDIS_SERVER", "/usr/bin/redis-server")
START_TIMEOUT = 5.0   # seconds for redis-server to answer PING after it starts


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis error: %s" % rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exactly(n).decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("unexpected RESP reply %r" % line)


class RedisServer:
    """One redis-server process; port is kept across restart()."""

    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="wschat-redis-")
        self.proc = None
        self.port = port
        self._log = None
        self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        """Starts redis-server (on self.port, or a free one the first time
        and on retry) and waits until it answers PING."""
        assert self.proc is None or self.proc.poll() is not None, "redis-server already running"
        keep_port = self.port is not None
        last = ""
        for _ in range(3):            # a free port may be taken between the probe and the bind
            if not keep_port:
                self.port = free_port()
            if self._log is None:
                self._log = open(os.path.join(self.dir, "redis.log"), "a+")
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", self.dir,
                 "--daemonize", "no", "--databases", "16", "--loglevel", "notice"],
                stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if self.command("PING", timeout=0.5) == "PONG":
                        return self
                except (OSError, ConnectionError, RuntimeError):
                    pass
                time.sleep(0.02)
            last = self.log_text()[-1500:]
            self._kill()
            if keep_port:
                # the old port may still be held by a dying process: retry it
                time.sleep(0.3)
        raise RuntimeError("redis-server did not start on 127.0.0.1:%d: %s" % (self.port, last))

    def command(self, *args, timeout=2.0):
        """Sends one command, returns its decoded reply (errors raise)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(_encode(args))
            return _Reader(s).reply()

    def info(self, section):
        """INFO section as a dict of strings."""
        out = {}
        for line in self.command("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def clients(self):
        """CLIENT LIST minus this query's own connection: one dict a client."""
        rows = []
        for line in self.command("CLIENT", "LIST").splitlines():
            d = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if d.get("cmd") != "client|list":
                rows.append(d)
        return rows

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Stops redis-server (SIGTERM: a clean shutdown, nothing saved;
        SIGKILL: a crash). The port stays ours for restart()."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()

    def restart(self, sig=signal.SIGTERM, down_seconds=0.0):
        """Stops redis-server, stays down for down_seconds, starts it again
        on the same port (empty: there is no persistence)."""
        self.stop(sig)
        if down_seconds:
            time.sleep(down_seconds)
        self.start()

    def log_text(self):
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def close(self):
        """Stops it for good and removes its directory."""
        self.stop()
        self._kill()
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis():
    """A fresh redis-server for one test, stopped at teardown."""
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail("%s not found: install Debian's redis-server (./dev installs it)" % REDIS_SERVER)
    r = RedisServer()
    yield r
    r.close()


# --- chat-cli nodes on one Redis ----------------------------------------------------------

class NodeStartError(AssertionError):
    pass


@pytest.fixture
def start_node(tmp_path):
    """Factory: start_node(redis, *args) -> conftest.Server, a chat-cli node
    with `--redis URL` (and --rate 0 unless args set --rate: these tests
    send fast), listening on its own free port; stopped at teardown.
    redis=None starts a node without --redis. A node that does not start
    fails the test with its stderr (a chat-cli without --redis says so)."""
    from conftest import Server
    started = []

    def _start(redis, *args):
        args = list(args)
        if "--rate" not in args:
            args += ["--rate", "0"]
        if redis is not None:
            args = ["--redis", redis if isinstance(redis, str) else redis.url] + args
        cwd = tmp_path / ("node%d" % len(started))
        cwd.mkdir()
        try:
            s = Server(args, cwd=str(cwd))
        except RuntimeError as e:
            raise NodeStartError("chat-cli %s did not start: %s" % (" ".join(args), e)) from None
        started.append(s)
        return s

    yield _start
    from conftest import stop_all
    stop_all(started)
