"""Valgrind memcheck for the end-to-end tests: with WSCHAT_VALGRIND=1 in the
environment, every chat-cli these tests start (conftest.Server and
jsonclient.CliProcess) runs under

    valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99

with valgrind's report in a file of its own (the server's stderr stays the
server's), and the tests' time limits are multiplied by SCALE (default 20
under valgrind, 1 otherwise; WSCHAT_TIMEOUT_SCALE sets it: 10 was not
enough for a history read on a machine loaded 2-3 times over). A server that
exits with 99 had a memory error or leaked memory that nothing points to:
assert_clean_exit() and Server.stop() fail the test and show the report.

meson's 'valgrind' suite runs a subset this way (tests/meson.build); by hand:

    WSCHAT_VALGRIND=1 python3 -m pytest -q tests/e2e/test_chat_basics.py
"""
import os
import tempfile

ENABLED = os.environ.get("WSCHAT_VALGRIND", "") not in ("", "0")
SCALE = float(os.environ.get("WSCHAT_TIMEOUT_SCALE", "20" if ENABLED else "1"))
ERROR_EXIT = 99

# still reachable memory at exit (libuv's, OpenSSL's, glibc's) is not a leak
VALGRIND = ["valgrind", "--quiet", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", "--error-exitcode=%d" % ERROR_EXIT,
            "--track-fds=no", "--num-callers=30"]


def wrap(argv):
    """argv as it is, or under valgrind: returns (argv, report path or None)."""
    if not ENABLED:
        return list(argv), None
    fd, path = tempfile.mkstemp(prefix="wschat-valgrind-", suffix=".log")
    os.close(fd)
    return VALGRIND + ["--log-file=" + path] + list(argv), path


def report(path):
    """valgrind's report (empty when clean or not under valgrind); a long
    one is cut in the middle, so that the first error and the summary both
    show in the last lines of a failure message."""
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        text = f.read()
    if len(text) > 1800:
        text = text[:1400] + "\n[... valgrind report cut ...]\n" + text[-300:]
    return text


def forget(path):
    if path and os.path.exists(path):
        os.unlink(path)
