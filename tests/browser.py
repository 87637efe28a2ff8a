"""Headless Chromium driven over the DevTools protocol (no extra dependency: tornado's
websocket client), for the site tests: open a page at a given viewport, wait until every chart
has rendered, read the console, evaluate JavaScript, take a screenshot.

Networking is off for the pages: every request that is not ``file:`` is blocked and counted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


#: JavaScript run once a page is loaded: the charts, how many rendered, and each one's width
#: against the width its container gives it
MEASURE = r"""
(() => {
  const charts = [...document.querySelectorAll('.clipsafety-chart')];
  const embeds = [...document.querySelectorAll('.vega-embed')];
  const wide = [];
  for (const e of embeds) {
    const parent = e.parentElement;
    const view = e.querySelector('svg, canvas');
    const w = Math.max(e.scrollWidth, view ? view.getBoundingClientRect().width : 0);
    if (w > parent.clientWidth + 1) {
      wide.push({id: parent.id || e.id, width: Math.round(w), container: parent.clientWidth});
    }
  }
  const tables = [];
  for (const t of document.querySelectorAll('article table, main table')) {
    const box = t.closest('.output, .cell_output, .table-wrapper') || t.parentElement;
    if (t.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX === 'visible') {
      tables.push({width: t.scrollWidth, container: box.clientWidth});
    }
  }
  const main = document.querySelector('main, article, .bd-article') || document.body;
  return {
    charts: charts.length,
    rendered: document.querySelectorAll('[role="graphics-document"]').length,
    errors: charts.filter(c => /chart error/.test(c.innerText)).map(c => c.innerText.slice(0, 200)),
    wide: wide, tables: tables,
    text: (main.innerText || '').trim().length,
    article: (document.querySelector('.bd-article-container, article') || main).clientWidth,
  };
})()
"""


@dataclass
class PageReport:
    url: str
    charts: int = 0
    rendered: int = 0
    chart_errors: list = field(default_factory=list)
    wide: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    text: int = 0
    article: int = 0
    console: list = field(default_factory=list)
    blocked: list = field(default_factory=list)
    screenshot: Path | None = None


class Browser:
    """One headless Chromium for a test module; :meth:`open` returns a :class:`PageReport`."""

    def __init__(self, binary: str, width: int = 1280, height: int = 900):
        self.width, self.height = width, height
        self.profile = tempfile.TemporaryDirectory(prefix="clipsafety-chromium-")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-quic", "--hide-scrollbars", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile.name}", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port = self._port()
        self.loop = asyncio.new_event_loop()

    def _port(self) -> int:
        t0 = time.time()
        while time.time() - t0 < 60:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line or "")
            if m:
                return int(m.group(1))
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("chromium did not start its DevTools endpoint")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.loop.close()
        self.profile.cleanup()

    def open(self, page: Path, screenshot: Path | None = None, width: int | None = None,
             timeout: float = 60, full_page: bool = False) -> PageReport:
        """Load ``page``; ``screenshot``: a PNG of the viewport (``full_page``: of the whole
        page, up to 12,000 px tall)."""
        return self.loop.run_until_complete(
            self._open(Path(page).resolve(), screenshot, width or self.width, timeout, full_page))

    async def _open(self, page: Path, screenshot, width, timeout, full_page=False) -> PageReport:
        from tornado.websocket import websocket_connect

        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank",
                                     method="PUT")
        target = json.loads(urllib.request.urlopen(req, timeout=30).read())
        ws = await websocket_connect(target["webSocketDebuggerUrl"], max_message_size=2**28)
        report = PageReport(url=page.as_uri())
        ids = iter(range(1, 10**9))
        pending: dict[int, asyncio.Future] = {}
        loaded = asyncio.Event()

        async def reader():
            while True:
                msg = await ws.read_message()
                if msg is None:
                    return
                m = json.loads(msg)
                if "id" in m and m["id"] in pending:
                    pending.pop(m["id"]).set_result(m)
                    continue
                method, p = m.get("method"), m.get("params", {})
                if method == "Page.loadEventFired":
                    loaded.set()
                elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    report.console.append(" ".join(str(a.get("value", a.get("description", "")))
                                                   for a in p.get("args", [])))
                elif method == "Runtime.exceptionThrown":
                    d = p.get("exceptionDetails", {})
                    report.console.append(d.get("exception", {}).get("description")
                                          or d.get("text", "exception"))
                elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    e = p["entry"]
                    report.console.append(f"{e.get('text')} ({e.get('url', '')})")
                elif method == "Network.requestWillBeSent":
                    url = p.get("request", {}).get("url", "")
                    if not url.startswith(("file:", "data:", "blob:", "about:")):
                        report.blocked.append(url)

        task = asyncio.ensure_future(reader())

        async def call(method, **params):
            i = next(ids)
            fut = asyncio.get_event_loop().create_future()
            pending[i] = fut
            await ws.write_message(json.dumps({"id": i, "method": method, "params": params}))
            res = await asyncio.wait_for(fut, timeout)
            if "error" in res:
                raise RuntimeError(f"{method}: {res['error']}")
            return res.get("result", {})

        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                await call(f"{domain}.enable")
            await call("Network.setBlockedURLs", urls=["http://*", "https://*", "ws://*"])
            await call("Emulation.setDeviceMetricsOverride", width=width, height=self.height,
                       deviceScaleFactor=1, mobile=False)
            await call("Page.navigate", url=page.as_uri())
            await asyncio.wait_for(loaded.wait(), timeout)
            t0 = time.time()
            while True:
                r = await call("Runtime.evaluate", expression=MEASURE, returnByValue=True)
                got = r["result"]["value"]
                done = got["rendered"] >= got["charts"] or got["errors"]
                if done or time.time() - t0 > timeout:
                    break
                await asyncio.sleep(0.25)
            await asyncio.sleep(0.5)  # late console messages
            got = (await call("Runtime.evaluate", expression=MEASURE,
                              returnByValue=True))["result"]["value"]
            report.charts, report.rendered = got["charts"], got["rendered"]
            report.chart_errors, report.wide, report.tables = got["errors"], got["wide"], got["tables"]
            report.text, report.article = got["text"], got["article"]
            if screenshot is not None:
                extra = {}
                if full_page:
                    size = (await call("Page.getLayoutMetrics"))["cssContentSize"]
                    extra = {"captureBeyondViewport": True,
                             "clip": {"x": 0, "y": 0, "width": width, "scale": 1,
                                      "height": min(12000, size["height"])}}
                shot = await call("Page.captureScreenshot", format="png", **extra)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                report.screenshot = screenshot
        finally:
            ws.close()
            task.cancel()
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/close/{target['id']}",
                                   timeout=30).read()
        return report
