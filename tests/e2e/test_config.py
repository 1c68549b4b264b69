"""chat-cli --config FILE (issue 10, operations): the flags' settings in an
INI file, flags winning over it, and SIGHUP applying what can change at
run time (limits, origins, log level), each change logged.
"""
import signal
import subprocess
import time

from conftest import CLI
from wsraw import RawWS, connect_tcp, parse_http_head, read_until_eof, upgrade_request


def status_of(server, origin=None, source=None):
    """The answer to an upgrade (101 closes the socket at once)."""
    s = connect_tcp(server.host, server.port, 5.0, source=source)
    extra = [("Origin", origin)] if origin else []
    s.sendall(upgrade_request("%s:%d" % (server.host, server.port), extra=extra))
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = s.recv(4096)
        if not chunk:
            break
        raw += chunk
    s.close()
    return parse_http_head(raw)[0]


def wait_for(server, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        err = server.stderr_text()
        if text in err:
            return err
        time.sleep(0.02)
    raise AssertionError("%r not logged; stderr:\n%s" % (text, server.stderr_text()))


def test_file_settings_apply_and_flags_win(start_server, tmp_path):
    conf = tmp_path / "chat.ini"
    conf.write_text("; chat-cli's settings\n"
                    "origin = https://a.example\n"
                    "max-per-ip = 5\n"
                    "[chat-cli]\n"
                    "log-format = json\n")
    s = start_server("--config", str(conf), "--max-per-ip", "1")
    assert status_of(s, "https://a.example", source="127.0.0.11") == 101
    assert status_of(s, "https://b.example", source="127.0.0.12") == 403
    # --max-per-ip 1 on the command line wins over the file's 5.
    held = RawWS.open(s, path="/?name=alice", source="127.0.0.13")
    assert status_of(s, source="127.0.0.13") == 429
    held.close()
    assert s.stderr_text().startswith('{"ts":')  # log-format from the file


def test_sighup_reloads_limits_origins_and_log_level(start_server, tmp_path):
    conf = tmp_path / "chat.ini"
    conf.write_text("origin = https://a.example\nrate = 20\nmax-per-ip = 10\n")
    s = start_server("--config", str(conf), "--max-per-ip", "2")
    assert status_of(s, "https://b.example") == 403
    conf.write_text("origin = https://b.example\n"
                    "origin = https://c.example\n"
                    "rate = 5\n"
                    "burst = 5\n"
                    "max-per-ip = 50\n"  # the command line's 2 still wins
                    "log-level = debug\n"
                    "echo = true\n")
    s.proc.send_signal(signal.SIGHUP)
    err = wait_for(s, "setting=log-level")
    assert "info reload setting=rate old=20 new=5" in err, err
    assert 'info reload setting=origin old=https://a.example new="https://b.example https://c.example"' in err
    assert "warn reload setting=echo needs=restart" in err, err
    assert "max-per-ip" not in err, err
    assert "info reload setting=burst old=40 new=5" in err, err  # from its default
    assert "max-message" not in err, err  # unchanged: not logged
    assert status_of(s, "https://b.example") == 101
    assert status_of(s, "https://a.example") == 403
    # The rate: 5 at once, then "! slow down".
    ws = RawWS.open(s, path="/?name=bob")
    ws.recv_message()
    for i in range(7):
        ws.send_text("line %d" % i)
    got = [ws.recv_message()[1] for _ in range(6)]
    assert got[:5] == [b"[lobby] bob: line %d" % i for i in range(5)] and got[5] == b"! slow down", got
    # Debug now: this connection was logged.
    wait_for(s, "debug connect")
    # Per-address limit still the command line's 2 (from an address of its own).
    held = [RawWS.open(s, path="/?name=h%d" % i, source="127.0.0.9") for i in range(2)]
    assert status_of(s, source="127.0.0.9") == 429
    for w in held + [ws]:
        w.close()


def test_bad_file_on_reload_keeps_the_settings(start_server, tmp_path):
    conf = tmp_path / "chat.ini"
    conf.write_text("origin = https://a.example\n")
    s = start_server("--config", str(conf))
    conf.write_text("nonsense = 1\n")
    s.proc.send_signal(signal.SIGHUP)
    wait_for(s, "error reload")
    assert s.alive()
    assert status_of(s, "https://a.example") == 101
    assert status_of(s, "https://b.example") == 403


def test_bad_config_file_exits_2(tmp_path):
    for text, why in [("nonsense = 1\n", "unknown setting nonsense"),
                      ("[other]\nrate = 1\n", "unknown section [other]"),
                      ("echo = maybe\n", "echo takes true or false"),
                      ("rate = lots\n", "invalid --rate lots")]:
        conf = tmp_path / "bad.ini"
        conf.write_text(text)
        r = subprocess.run([CLI, "--config", str(conf), "--port", "0"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and why in r.stderr, (text, r)
    r = subprocess.run([CLI, "--config", str(tmp_path / "missing.ini")], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "cannot read --config" in r.stderr, r
