"""A real headless Chromium, driven over the DevTools protocol with the
Python `websockets` client (no npm, no driver): `Browser().eval(js)` runs a
JavaScript expression in a page and returns its (awaited) value."""
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
]


class Browser:
    def __init__(self, timeout=20):
        self.dir = tempfile.mkdtemp(prefix="wschat-chromium-")
        self.proc = subprocess.Popen([CHROMIUM] + FLAGS + ["--user-data-dir=" + self.dir, "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while True:
            if os.path.exists(port_file):
                lines = open(port_file).read().split()
                if lines:
                    self.port = int(lines[0])
                    break
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start")
            time.sleep(0.05)
        while True:
            try:
                pages = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port, timeout=2))
                self.page = next(p["webSocketDebuggerUrl"] for p in pages if p.get("type") == "page")
                break
            except Exception:
                if time.monotonic() > deadline:
                    self.close()
                    raise
                time.sleep(0.1)

    def eval(self, expression, timeout=10):
        async def go():
            async with websockets.connect(self.page, max_size=None) as cdp:
                await cdp.send(json.dumps({"id": 1, "method": "Runtime.evaluate", "params": {
                    "expression": expression, "awaitPromise": True, "returnByValue": True}}))
                while True:
                    msg = json.loads(await cdp.recv())
                    if msg.get("id") == 1:
                        break
            res = msg["result"]
            if "exceptionDetails" in res:
                raise AssertionError("page script failed: %s" % json.dumps(res["exceptionDetails"])[:500])
            return res["result"].get("value")
        return asyncio.run(asyncio.wait_for(go(), timeout))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
