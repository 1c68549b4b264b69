"""Shared fixtures for the end-to-end tests: they start the real chat-cli.

The binary comes from $WSCHAT_CLI (meson sets it); every server listens on
127.0.0.1 with --port 0, and its actual port is read from the one line it
prints on start.  Every process started here is stopped at teardown.
"""
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

import memcheck

CLI = os.environ.get("WSCHAT_CLI", os.path.join(os.path.dirname(__file__), "..", "..", "build", "cli", "chat-cli"))
START_RE = re.compile(r"^listening on (?P<scheme>wss?)://(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+)/$")


class Server:
    """A running chat-cli process."""

    def __init__(self, args, host="127.0.0.1", cwd=None):
        args = list(args)
        # History is on by default in chat-cli (wschat.db in the cwd); a
        # test that wants it names its file, every other one runs without.
        if not any(a.startswith("--history") or a == "--no-history" for a in args) \
                and "--echo" not in args:
            args.append("--no-history")
        # SIGTERM drains over --drain-seconds (10 by default): a test that
        # stops a server with clients still open would wait for the drain.
        # Tests of the drain set the flag; every other one stops at once.
        if "--drain-seconds" not in args:
            args += ["--drain-seconds", "0"]
        self.args = [CLI, "--host", host, "--port", "0"] + args
        # With WSCHAT_VALGRIND=1, under valgrind memcheck (memcheck.py).
        argv, self.valgrind_log = memcheck.wrap(self.args)
        # stderr goes to a file, not a pipe: a server that logs a lot must
        # never block on a pipe nobody drains.
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, bufsize=1, cwd=cwd)
        line = self._readline(timeout=10 * memcheck.SCALE)
        m = START_RE.match(line.strip())
        if not m:
            self.terminate()
            err = self.stderr_text()   # before stop() closes the file
            self.stop()
            raise RuntimeError("unexpected start line from chat-cli: %r (stderr: %s)" % (line, err))
        self.host = m.group("host").strip("[]")
        self.port = int(m.group("port"))
        hostpart = "[%s]" % self.host if ":" in self.host else self.host
        self.url = "%s://%s:%d/" % (m.group("scheme"), hostpart, self.port)

    def _readline(self, timeout):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    return self.proc.stdout.readline()
                if self.proc.poll() is not None:
                    break
        finally:
            sel.close()
        return ""

    def alive(self):
        return self.proc.poll() is None

    def stderr_text(self):
        """The server's stderr, then valgrind's report if it ran under it."""
        self._stderr.seek(0)
        return self._stderr.read() + memcheck.report(self.valgrind_log)

    def terminate(self, sig=signal.SIGTERM, timeout=10):
        """Send sig and wait; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout * memcheck.SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return None

    def stop(self):
        """Stops the server (SIGTERM). Under valgrind, fails if valgrind
        found an error or a definite leak (exit status 99)."""
        if self.proc.poll() is None:
            self.terminate()
        if self._stderr.closed:   # stopped already
            return
        if self.proc.stdout:
            self.proc.stdout.close()
        bad = self.proc.returncode == memcheck.ERROR_EXIT and self.valgrind_log
        text = self.stderr_text() if bad else ""
        sanitizer = sanitizer_report(self.stderr_text())
        self._stderr.close()
        memcheck.forget(self.valgrind_log)
        self.valgrind_log = None
        assert not bad, "valgrind: %s" % text[-6000:]
        # In the ASan+UBSan build a server's leaks are reported at exit,
        # after every test of it passed: they fail the test here.
        assert not sanitizer, "sanitizer: %s" % sanitizer[-6000:]


SANITIZER_RE = re.compile(r"^(==\d+==ERROR: (AddressSanitizer|LeakSanitizer)|.*: runtime error: )", re.M)


def sanitizer_report(text):
    """The part of a server's stderr from its first sanitizer report on,
    or "" if it has none."""
    m = SANITIZER_RE.search(text)
    return text[m.start():] if m else ""


def without_flood_control(start):
    """start_server, but its servers run with --rate 0 unless a test sets
    --rate: for suites that send faster than a person on purpose (flood
    control has tests of its own, test_chat_flood.py)."""
    def _start(*args, **kw):
        if "--rate" not in args:
            args = args + ("--rate", "0")
        return start(*args, **kw)
    return _start


@pytest.fixture
def start_server():
    """Factory: start_server("--echo", "--max-message", "100") -> Server (stopped at teardown)."""
    started = []

    def _start(*args, host="127.0.0.1"):
        s = Server(args, host=host)
        started.append(s)
        return s

    yield _start
    stop_all(started)


def stop_all(servers):
    """Stops every server, then raises the first failure (a sanitizer
    report, valgrind's verdict): one server's failure never leaves the
    others running."""
    first = None
    for s in servers:
        try:
            s.stop()
        except Exception as e:  # noqa: BLE001 - re-raised below
            first = first or e
    if first is not None:
        raise first


@pytest.fixture
def echo_server(start_server):
    return start_server("--echo")


@pytest.fixture
def chat_server(start_server):
    return start_server()
