"""Several pages of one headless Chromium, driven over the DevTools protocol
from asyncio (no npm, no driver): one WebSocket to the browser, one session
per page (Target.attachToTarget with flatten), each page in a browser
context of its own (its own localStorage and sessionStorage: two people,
not two tabs of one).

    async with Chromium() as browser:
        page = await browser.new_page()
        await page.goto("http://127.0.0.1:8765/")
        await page.wait_for("document.title === 'wschat'")

browser.py starts the same Chromium for one-expression tests; this module
is for tests that need events (dialogs, load) and more than one page.
"""
import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

import websockets

from browser import CHROMIUM, FLAGS


class CDPError(Exception):
    pass


class Chromium:
    def __init__(self, timeout=20, flags=()):
        self.timeout = timeout
        self.flags = list(flags)  # more command-line flags (test_tls: the test CA)
        self.proc = None
        self.dir = None
        self.ws = None
        self.reader = None
        self.next_id = 0
        self.waiting = {}  # id -> future
        self.pages = {}  # session id -> Page

    async def __aenter__(self):
        self.dir = tempfile.mkdtemp(prefix="wschat-chromium-")
        self.proc = subprocess.Popen([CHROMIUM] + FLAGS + self.flags + ["--user-data-dir=" + self.dir, "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        deadline = time.monotonic() + self.timeout
        lines = []
        while len(lines) < 2:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                await self.close()
                raise RuntimeError("chromium did not start")
            await asyncio.sleep(0.05)
            if os.path.exists(port_file):
                lines = open(port_file).read().split()
        url = "ws://127.0.0.1:%s%s" % (lines[0], lines[1])
        self.ws = await websockets.connect(url, max_size=None, ping_interval=None)
        self.reader = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        if self.reader:
            self.reader.cancel()
        if self.ws:
            await self.ws.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self.waiting.pop(msg["id"], None)
                if fut and not fut.done():
                    if "error" in msg:
                        fut.set_exception(CDPError("%s" % msg["error"]))
                    else:
                        fut.set_result(msg.get("result", {}))
            elif msg.get("sessionId") in self.pages:
                self.pages[msg["sessionId"]]._event(msg["method"], msg.get("params", {}))

    async def send(self, method, params=None, session=None, timeout=10):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut = asyncio.get_running_loop().create_future()
        self.waiting[self.next_id] = fut
        await self.ws.send(json.dumps(msg))
        return await asyncio.wait_for(fut, timeout)

    async def new_page(self, width=1000, height=640):
        """A blank page in a fresh browser context, with Page and Runtime events on."""
        ctx = (await self.send("Target.createBrowserContext"))["browserContextId"]
        target = (await self.send("Target.createTarget", {"url": "about:blank", "browserContextId": ctx}))["targetId"]
        session = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        page = Page(self, session)
        self.pages[session] = page
        await page.cmd("Page.enable")
        await page.cmd("Runtime.enable")
        await page.cmd("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page


class Page:
    def __init__(self, browser, session):
        self.browser = browser
        self.session = session
        self.dialogs = []  # messages of every JavaScript dialog that opened
        self.console = []  # console messages and exceptions
        self.loaded = asyncio.Event()

    def _event(self, method, params):
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(params.get("message"))
            asyncio.ensure_future(self.cmd("Page.handleJavaScriptDialog", {"accept": False}))
        elif method == "Page.loadEventFired":
            self.loaded.set()
        elif method == "Runtime.consoleAPICalled":
            self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            self.console.append("exception: %s" % json.dumps(params["exceptionDetails"])[:300])

    async def cmd(self, method, params=None, timeout=10):
        return await self.browser.send(method, params, session=self.session, timeout=timeout)

    async def goto(self, url, timeout=10):
        self.loaded.clear()
        await self.cmd("Page.navigate", {"url": url})
        await asyncio.wait_for(self.loaded.wait(), timeout)

    async def reload(self, timeout=10):
        self.loaded.clear()
        await self.cmd("Page.reload")
        await asyncio.wait_for(self.loaded.wait(), timeout)

    async def eval(self, expression, timeout=10):
        res = await self.cmd("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                  "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in res:
            raise AssertionError("page script failed: %s" % json.dumps(res["exceptionDetails"])[:500])
        return res["result"].get("value")

    async def wait_for(self, expression, timeout=10, what=None):
        """Polls expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = await self.eval(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s" % (what or expression))
            await asyncio.sleep(0.05)

    async def type(self, text):
        """Types text where the focus is (one input event, as a paste or an IME would)."""
        await self.cmd("Input.insertText", {"text": text})

    async def press(self, key="Enter"):
        codes = {"Enter": 13, "Tab": 9}
        params = {"key": key, "code": key, "windowsVirtualKeyCode": codes[key]}
        await self.cmd("Input.dispatchKeyEvent", dict(params, type="keyDown",
                                                      **({"text": "\r"} if key == "Enter" else {})))
        await self.cmd("Input.dispatchKeyEvent", dict(params, type="keyUp"))

    async def screenshot(self, path):
        data = (await self.cmd("Page.captureScreenshot", {"format": "png"}))["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
