"""GET /metrics (issue 10, operations): the Prometheus text exposition
format, and counters that change by exactly what the clients did.

Each test scrapes, does known things with raw clients (whose every byte is
counted here), scrapes again and compares the differences with what it
did.  The scrape's own connection is part of what is counted: the second
scrape's connection is accepted before the text is rendered, and the first
scrape's answer is written after its own rendering.
"""
import re
import time

from wsraw import (OP_CLOSE, OP_TEXT, RawWS, connect_tcp, encode_frame, parse_http_head, read_until_eof,
                   upgrade_request)

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


# --- the exposition format -----------------------------------------------------------------

def parse_exposition(text):
    """Parses the text format 0.0.4 strictly -> ({(name, labels): value}, {name: type}).

    Every sample belongs to a family whose HELP and TYPE came first (once
    each); names and label names are valid; no series appears twice;
    counters are named *_total and never negative; the text ends in a
    newline."""
    assert text.endswith("\n"), "the text must end with a newline"
    samples, types, helps = {}, {}, set()
    family = None
    for line in text.split("\n")[:-1]:
        assert line == line.strip() and line, "stray whitespace or empty line: %r" % line
        if line.startswith("#"):
            parts = line.split(" ", 3)
            assert len(parts) >= 3 and parts[1] in ("HELP", "TYPE"), line
            name = parts[2]
            assert NAME_RE.match(name), "invalid metric name in %r" % line
            if parts[1] == "HELP":
                assert name not in helps, "second HELP for %s" % name
                assert len(parts) == 4 and parts[3], "HELP without text: %r" % line
                helps.add(name)
            else:
                assert name not in types, "second TYPE for %s" % name
                assert name in helps, "TYPE before HELP for %s" % name
                assert len(parts) == 4 and parts[3] in TYPES, line
                types[name] = parts[3]
            family = name
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels_text, value = m.groups()
        assert name == family and name in types, "sample %r outside its family (%r)" % (line, family)
        labels = ()
        if labels_text:
            inner = labels_text[1:-1]
            pairs = LABEL_RE.findall(inner)
            assert ",".join('%s="%s"' % p for p in pairs) == inner, "bad labels in %r" % line
            labels = tuple(sorted(pairs))
        v = float(value)
        key = (name, labels)
        assert key not in samples, "series %r twice" % (key,)
        if types[name] == "counter":
            assert name.endswith("_total") and v >= 0, line
        samples[key] = v
    assert all(n.startswith("wschat_") for n in types), sorted(types)
    return samples, types


class Metrics:
    def __init__(self, samples):
        self.samples = samples

    def __call__(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        assert key in self.samples, "no series %r in %r" % (key, sorted(self.samples)[:80])
        return self.samples[key]

    def __sub__(self, other):
        return Delta(self, other)


class Delta:
    def __init__(self, after, before):
        self.after, self.before = after, before

    def __call__(self, name, **labels):
        return self.after(name, **labels) - self.before(name, **labels)


def scrape(server, tally=None):
    """GET /metrics -> Metrics; tally (a list) gets the number of bytes the
    server wrote for this answer."""
    s = connect_tcp(server.host, server.port, 5.0)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        raw, closed = read_until_eof(s, 5.0)
    finally:
        s.close()
    assert closed, raw[:200]
    status, _, headers = parse_http_head(raw)
    assert status == 200, raw[:300]
    assert headers.get("content-type") == ["text/plain; version=0.0.4"], headers
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert int(headers["content-length"][0]) == len(body)
    if tally is not None:
        tally.append(len(raw))
    samples, _ = parse_exposition(body.decode("utf-8"))
    return Metrics(samples)


class Counted(RawWS):
    """A RawWS that counts every byte it sends and receives after the
    handshake (into the class-wide totals given)."""

    totals = None

    def send(self, data, chunk=None, delay=0.0):
        if self.totals is not None and self.response_head is not None:
            self.totals["in"] += len(data)
        super().send(data, chunk, delay)

    def _fill(self, deadline):
        before = len(self.buf)
        super()._fill(deadline)
        if self.totals is not None:
            self.totals["out"] += len(self.buf) - before


def join(server, name, **kw):
    ws = Counted.open(server, path="/?name=%s" % name, timeout=5, **kw)
    op, line = ws.recv_message()
    assert line.startswith(b"* welcome, %s!" % name.encode()), line
    return ws


def expect_line(ws, want, timeout=5.0):
    op, got = ws.recv_message(timeout=timeout)
    assert (op, got) == (OP_TEXT, want.encode()), "%r, expected %r" % (got, want)


# --- tests -----------------------------------------------------------------------------------

def test_exposition_is_valid_and_complete(start_server):
    s = start_server()
    m = scrape(s)
    for name in ["wschat_connections_accepted_total", "wschat_websockets_opened_total", "wschat_rooms",
                 "wschat_messages_received_total", "wschat_messages_sent_total",
                 "wschat_received_bytes_total", "wschat_sent_bytes_total", "wschat_deliveries_total",
                 "wschat_slow_consumer_closes_total", "wschat_rate_limit_closes_total",
                 "wschat_output_queued_bytes"]:
        m(name)
    for reason in ["max_connections", "per_ip", "origin", "other"]:
        m("wschat_connections_refused_total", reason=reason)
    for state in ["http", "open", "closing"]:
        m("wschat_connections", state=state)
    assert m("wschat_connections", state="http") == 1  # this scrape
    for code in ["1000", "1001", "1006", "1008", "1011", "1012", "other"]:
        m("wschat_closes_total", code=code)
    assert 0 <= m("wschat_loop_lag_seconds", stat="last") <= m("wschat_loop_lag_seconds", stat="max") < 5
    # HEAD answers the head only; the route is plain HTTP, never an upgrade.
    sock = connect_tcp(s.host, s.port, 5.0)
    sock.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    raw, _ = read_until_eof(sock, 5.0)
    sock.close()
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"\r\n\r\n"), raw[:200]


def test_history_writer_is_exposed(start_server, tmp_path):
    s = start_server("--history", str(tmp_path / "m.db"), "--history-flush-ms", "10")
    a = join(s, "alice")

    def settled():  # everything appended is written (alice's join too)
        deadline = time.monotonic() + 5
        while True:
            m = scrape(s)
            if m("wschat_history_written_total") == m("wschat_history_appended_total") \
                    or time.monotonic() > deadline:
                return m
            time.sleep(0.02)

    m0 = settled()
    a.send_text("kept")
    expect_line(a, "[lobby] alice: kept")
    d = settled() - m0
    assert d("wschat_history_appended_total") == 1
    assert d("wschat_history_written_total") == 1
    assert d("wschat_history_dropped_total") == 0
    assert d("wschat_history_write_errors_total") == 0
    assert d("wschat_history_commits_total") >= 1
    assert scrape(s)("wschat_history_queue_bytes") == 0
    a.close()


def test_no_metrics_flag(start_server):
    s = start_server("--no-metrics")
    sock = connect_tcp(s.host, s.port, 5.0)
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    raw, _ = read_until_eof(sock, 5.0)
    sock.close()
    assert raw.startswith(b"HTTP/1.1 404"), raw[:100]


def test_counters_match_what_clients_did(start_server):
    # N clients chat M lines each, a browser from another origin is
    # refused, two clients leave: every counter moves by exactly that.
    N, M = 5, 4
    s = start_server("--origin", "https://chat.example", "--ping-interval", "60", "--rate", "0")
    clients = []
    for i in range(N):
        c = join(s, "u%d" % i)
        for earlier in clients:
            expect_line(earlier, "* u%d joined #lobby" % i)
        clients.append(c)
    totals = {"in": 0, "out": 0}
    Counted.totals = totals
    tally = []
    m0 = scrape(s, tally)
    try:
        # M lines each, everyone (the sender too) reads every one.
        for r in range(M):
            for c in clients:
                c.send_text("line %d" % r)
        want = sorted(b"[lobby] u%d: line %d" % (i, r) for i in range(N) for r in range(M))
        for k in clients:  # the senders' sockets race each other: any order
            got = sorted(k.recv_message(timeout=5.0)[1] for _ in range(N * M))
            assert got == want
        # A browser page from elsewhere: 403, before anything else happens.
        refused = connect_tcp(s.host, s.port, 5.0)
        req = upgrade_request("%s:%d" % (s.host, s.port), extra=[("Origin", "https://evil.example")])
        refused.sendall(req)
        answer, closed = read_until_eof(refused, 5.0)
        refused.close()
        assert closed and answer.startswith(b"HTTP/1.1 403"), answer[:100]
        # Two leave with a close handshake; the others hear each leave.
        for j in (0, 1):
            leaver = clients[j]
            leaver.send_close(1000, b"bye")
            f = leaver.recv_frame()
            assert f.opcode == OP_CLOSE and f.close_code == 1000
            for k in clients[j + 1:]:
                expect_line(k, "* u%d left #lobby" % j)
        time.sleep(0.2)  # the leavers' sockets finish closing
        m1 = scrape(s)
    finally:
        Counted.totals = None
    d = m1 - m0
    lines = N * M
    assert d("wschat_messages_received_total") == lines
    deliveries = lines * N + (N - 1) + (N - 2)  # every line to all; two leave notices
    assert d("wschat_deliveries_total") == deliveries
    assert d("wschat_messages_sent_total") == deliveries
    assert d("wschat_websockets_opened_total") == 0
    assert d("wschat_connections_accepted_total") == 2  # the refused one, the second scrape
    assert d("wschat_connections_refused_total", reason="origin") == 1
    for reason in ("max_connections", "per_ip", "other"):
        assert d("wschat_connections_refused_total", reason=reason) == 0
    assert d("wschat_closes_total", code="1000") == 2
    assert d("wschat_closes_total", code="1008") == 0
    assert m1("wschat_connections", state="open") == N - 2
    assert m1("wschat_connections", state="http") == 1  # the scrape
    assert m1("wschat_rooms") == 1
    # Bytes: everything the clients sent and read in between, the refused
    # request and its answer, the first scrape's answer (written after it
    # was rendered) and the second scrape's request.
    scrape_request = len(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert d("wschat_received_bytes_total") == totals["in"] + len(req) + scrape_request
    assert d("wschat_sent_bytes_total") == totals["out"] + len(answer) + tally[0]
    assert m1("wschat_output_queued_bytes") == 0
    for c in clients:
        c.close()


def test_slow_consumer_close_is_counted(start_server):
    # A client asks for many replies and reads none: closed 1008 "slow
    # consumer", counted once, and nobody else is closed.
    s = start_server("--max-output", "65536", "--max-per-ip", "0", "--rate", "0")
    crowd = [join(s, "member-of-a-crowd-%02d" % i) for i in range(30)]
    m0 = scrape(s)
    attacker = join(s, "attacker", rcvbuf=4096)
    attacker.send(encode_frame(OP_TEXT, b"/users *") * 6000)
    # It reads nothing until the server has given up on it (a reader that
    # drains at once may keep up with a slow, e.g. sanitized, server).
    deadline = time.monotonic() + 20
    while True:
        d = scrape(s) - m0
        if d("wschat_slow_consumer_closes_total") >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    read_until_eof(attacker.sock, 20.0)  # its close, or a reset after the close timeout
    attacker.close()
    time.sleep(0.2)
    d = scrape(s) - m0
    assert d("wschat_slow_consumer_closes_total") == 1
    assert d("wschat_closes_total", code="1008") == 1
    assert d("wschat_rate_limit_closes_total") == 0
    assert d("wschat_websockets_opened_total") == 1
    for c in crowd:
        c.close()


def test_rate_limit_close_is_counted(start_server):
    s = start_server("--rate", "5", "--burst", "5")
    other = join(s, "other")
    m0 = scrape(s)
    flooder = join(s, "flooder")
    expect_line(other, "* flooder joined #lobby")
    flooder.send(b"".join(encode_frame(OP_TEXT, b"spam %d" % i) for i in range(100)))
    code = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        f = flooder.recv_frame(max(0.01, deadline - time.monotonic()))
        if f.opcode == OP_CLOSE:
            code, reason = f.close_code, f.close_reason
            break
    assert (code, reason) == (1008, b"rate limit")
    flooder.close()
    time.sleep(0.2)
    d = scrape(s) - m0
    assert d("wschat_rate_limit_closes_total") == 1
    assert d("wschat_closes_total", code="1008") == 1
    assert d("wschat_slow_consumer_closes_total") == 0
    # Every frame it sent was a message received, admitted or not.
    assert d("wschat_messages_received_total") >= 31
    other.close()


def test_connection_refusals_are_counted_by_reason(start_server):
    # --max-per-ip 2: a third connection from 127.0.0.2 gets 429;
    # --max-connections 4: past four at once, 503. Scrapes come from
    # 127.0.0.1 and count as connections while they last.
    s = start_server("--max-per-ip", "2", "--max-connections", "4")
    m0 = scrape(s)
    a = RawWS.open(s, source="127.0.0.2")
    b = RawWS.open(s, source="127.0.0.2")

    def refused_status(source):
        sock = connect_tcp(s.host, s.port, 5.0, source=source)
        sock.sendall(upgrade_request("%s:%d" % (s.host, s.port)))
        raw, _ = read_until_eof(sock, 5.0)
        sock.close()
        return parse_http_head(raw)[0]

    assert refused_status("127.0.0.2") == 429
    c = RawWS.open(s, source="127.0.0.3")
    d_ = RawWS.open(s, source="127.0.0.4")
    assert refused_status("127.0.0.5") == 503
    d_.close()
    # The scrape needs a slot: retried (and each 503 counted) until one is free.
    extra = 0
    deadline = time.monotonic() + 5
    while True:
        try:
            m1 = scrape(s)
            break
        except AssertionError:
            extra += 1
            assert time.monotonic() < deadline
            time.sleep(0.05)
    d = m1 - m0
    assert d("wschat_connections_refused_total", reason="per_ip") == 1
    assert d("wschat_connections_refused_total", reason="max_connections") == 1 + extra
    assert d("wschat_connections_refused_total", reason="origin") == 0
    assert d("wschat_websockets_opened_total") == 4
    for w in (a, b, c):
        w.close()
