"""Structured logs (issue 10, operations): one line an event on stderr,
--log-level error|warn|info|debug, --log-format text|json.

conftest sends the server's stderr to a file; each test stops the server
(SIGTERM) and reads every line of it.
"""
import json
import re

from wsraw import OP_CLOSE, RawWS, connect_tcp, encode_frame, parse_http_head, read_until_eof, upgrade_request

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TEXT_RE = re.compile(r'^(\S+) (error|warn|info|debug) ([a-z_]+)((?: [a-z_]+=(?:"(?:[^"\\]|\\.)*"|\S+))*)$')
FIELD_RE = re.compile(r' ([a-z_]+)=("(?:[^"\\]|\\.)*"|\S+)')


def stop(server):
    assert server.terminate(timeout=10) == 0
    return server.stderr_text().splitlines()


def json_events(lines):
    events = []
    for line in lines:
        e = json.loads(line)  # every line is one JSON object
        assert list(e)[:3] == ["ts", "level", "event"], e
        assert TS_RE.match(e["ts"]), e
        assert e["level"] in ("error", "warn", "info", "debug"), e
        events.append(e)
    return events


def refused(server, extra=()):
    s = connect_tcp(server.host, server.port, 5.0)
    s.sendall(upgrade_request("%s:%d" % (server.host, server.port), extra=extra))
    raw, _ = read_until_eof(s, 5.0)
    s.close()
    return parse_http_head(raw)[0]


def test_json_lines_at_debug(start_server):
    s = start_server("--log-format", "json", "--log-level", "debug", "--origin", "https://ok.example")
    ws = RawWS.open(s, path="/room?name=alice")
    ws.recv_message()
    local = "%s:%d" % ws.sock.getsockname()[:2]
    ws.send_close(1000, b"bye")
    assert ws.recv_frame().opcode == OP_CLOSE
    ws.close()
    assert refused(s, extra=[("Origin", "https://evil.example")]) == 403
    # A protocol error (an unmasked frame) is a warning.
    bad = RawWS.open(s, path="/?name=bob")
    bad.recv_message()
    bad.send(encode_frame(0x1, b"unmasked", mask=False))
    assert bad.recv_frame().close_code == 1002
    bad.close()
    events = json_events(stop(s))
    kinds = [e["event"] for e in events]
    listen = events[0]
    assert (listen["event"], listen["level"], listen["port"]) == ("listen", "info", s.port)
    connect = next(e for e in events if e["event"] == "connect")
    assert connect == {"ts": connect["ts"], "level": "debug", "event": "connect", "id": 1,
                       "peer": local, "path": "/room"}
    d = [e for e in events if e["event"] == "disconnect"]
    assert [(e["id"], e["code"], e["level"]) for e in d] == [(1, 1000, "debug"), (3, 1002, "warn")], d  # 2: the refused one
    assert d[0]["peer"] == local and isinstance(d[0]["duration_ms"], int) and 0 <= d[0]["duration_ms"] < 5000
    r = next(e for e in events if e["event"] == "refuse")
    assert (r["level"], r["status"], r["reason"]) == ("info", 403, "origin"), r
    assert kinds.count("connect") == 2 and "shutdown" in kinds, kinds


def test_text_lines_and_refusals_at_info(start_server):
    s = start_server("--max-per-ip", "1")
    ws = RawWS.open(s, path="/?name=alice")
    ws.recv_message()
    assert refused(s) == 429
    ws.close()
    lines = stop(s)
    events = []
    for line in lines:
        m = TEXT_RE.match(line)
        assert m, "not a log line: %r" % line
        assert TS_RE.match(m.group(1))
        fields = dict(FIELD_RE.findall(m.group(4)))
        events.append((m.group(2), m.group(3), fields))
    assert events[0][:2] == ("info", "listen") and events[0][2]["port"] == str(s.port)
    # info: no line per connection; the refusal has one.
    assert not [e for e in events if e[1] in ("connect", "disconnect")], events
    r = [e for e in events if e[1] == "refuse"]
    assert len(r) == 1 and r[0][2]["status"] == "429" and r[0][2]["reason"] == "per_ip", r


def test_log_level_error_is_quiet(start_server):
    s = start_server("--log-level", "error")
    ws = RawWS.open(s, path="/?name=alice")
    ws.recv_message()
    ws.close()
    assert stop(s) == []


def test_bad_log_flags_exit_2():
    import subprocess
    from conftest import CLI
    for args in (["--log-level", "verbose"], ["--log-format", "xml"]):
        r = subprocess.run([CLI] + args, capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and args[0] in r.stderr, r
