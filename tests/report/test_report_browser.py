"""The study report in a real headless Chromium, driven over the DevTools protocol (through a pipe, no extra package).

Checks that every figure is decoded and drawn (not blank), that the page makes no network request, and that it fits
a 1280 px wide window without horizontal scrolling. The full-page screenshot is kept in the test's folder and, when
MEDTRANSFER_SCREENSHOT_DIR is set, copied there.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

WIDTH = 1280
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", f"--window-size={WIDTH},900",
         # nothing may leave the machine: every host name fails to resolve
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


def find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


class DevTools:
    """A Chromium process and its DevTools protocol over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out)."""

    def __init__(self, binary: str, profile: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def as_fds_3_and_4():  # runs in the child before exec
            a = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=as_fds_3_and_4,  # noqa: PLW1509 - it only duplicates two fds
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._inbox: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for m in messages:
                    self._inbox.put(json.loads(m))
        self._inbox.put(None)

    def _pump(self, timeout: float) -> None:
        message = self._inbox.get(timeout=timeout)
        if message is None:
            raise RuntimeError("Chromium closed the DevTools pipe")
        if "id" in message:
            self._replies[message["id"]] = message
        else:
            self.events.append(message)

    def send(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        """Call ``method`` and return its result (raise on a protocol error)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while self._next_id not in self._replies:
            self._pump(max(0.01, deadline - time.monotonic()))
        reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait_for(self, method: str, session: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for e in self.events[seen:]:
                if e.get("method") == method and e.get("sessionId") == session:
                    return e
            seen = len(self.events)
            self._pump(max(0.01, deadline - time.monotonic()))

    def settle(self, seconds: float) -> None:
        """Collect events for ``seconds`` (late requests: lazy images, fonts)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._pump(left)
            except queue.Empty:
                break

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, OSError, queue.Empty):
            pass  # already gone: the wait below returns at once
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = find_browser()
    if binary is None:
        pytest.skip("no Chromium found (install the Debian package 'chromium')")
    tools = DevTools(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield tools
    tools.close()


def open_page(tools: DevTools, path: Path) -> tuple[str, list[str]]:
    """Open ``path`` in a new 1280 px wide tab; (session id, URL of every request the page made)."""
    target = tools.send("Target.createTarget", url="about:blank")["targetId"]
    session = tools.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Network", "Page", "Runtime"):
        tools.send(f"{domain}.enable", session)
    tools.send("Emulation.setDeviceMetricsOverride", session, width=WIDTH, height=900, deviceScaleFactor=1,
               mobile=False)
    first = len(tools.events)
    tools.send("Page.navigate", session, url=path.resolve().as_uri())
    tools.wait_for("Page.loadEventFired", session)
    evaluate(tools, session, "Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
    tools.settle(1.0)
    requests = [e["params"]["request"]["url"] for e in tools.events[first:]
                if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == session]
    return session, requests


def evaluate(tools: DevTools, session: str, expression: str):
    result = tools.send("Runtime.evaluate", session, expression=expression, awaitPromise=True, returnByValue=True)
    if "exceptionDetails" in result:
        raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
    return result["result"].get("value")


def full_page_screenshot(tools: DevTools, session: str) -> Image.Image:
    height = evaluate(tools, session, "document.documentElement.scrollHeight")
    shot = tools.send("Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
                      clip={"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1})
    return Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")


IMAGES_JS = """[...document.images].map(i => {
  const r = i.getBoundingClientRect();
  return {complete: i.complete, w: i.naturalWidth, h: i.naturalHeight, alt: i.alt,
          x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height};
})"""


def test_report_renders_offline_and_fits_1280px(browser, study_run, tmp_path):
    report = study_run[0] / "report.html"
    session, requests = open_page(browser, report)

    # (2) no network: the only requests are the file itself and the inlined data: images
    outside = [u for u in requests if u != report.resolve().as_uri() and not u.startswith("data:")]
    assert outside == [], f"the report requested {outside}"
    assert report.resolve().as_uri() in requests  # the monitoring saw the page load

    # (3) no horizontal scrolling in a 1280 px window
    widths = evaluate(browser, session, "({scroll: document.documentElement.scrollWidth, "
                                        "client: document.documentElement.clientWidth, inner: window.innerWidth})")
    assert widths["inner"] == WIDTH
    assert widths["scroll"] <= widths["client"] <= WIDTH, widths

    # (1) every figure decoded at a useful size and drawn with content
    page = full_page_screenshot(browser, session)
    shot = tmp_path / "report.png"
    page.save(shot)
    if os.environ.get("MEDTRANSFER_SCREENSHOT_DIR"):
        keep = Path(os.environ["MEDTRANSFER_SCREENSHOT_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / "report.png")
    images = evaluate(browser, session, IMAGES_JS)
    assert len(images) == 6  # every figure of the page: five of the results and the calibration diagram
    for im in images:
        assert im["complete"] and im["w"] > 100 and im["h"] > 100, im
        assert im["width"] > 100 and im["height"] > 100 and im["x"] + im["width"] <= WIDTH, im
        drawn = np.asarray(page.crop((int(im["x"]), int(im["y"]), int(im["x"] + im["width"]),
                                      int(im["y"] + im["height"]))).convert("L"), dtype=float)
        assert drawn.std() > 5, f"figure '{im['alt']}' looks blank on screen"


def test_the_checks_catch_a_page_that_breaks_them(browser, study_run, tmp_path):
    """Control: the same checks see a request to the network and a page wider than the window."""
    html = (study_run[0] / "report.html").read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(html.replace("</main>", '<img src="http://report-check.invalid/x.png" alt="">'
                                              '<div style="width:1600px">wide</div></main>'))
    session, requests = open_page(browser, broken)
    assert "http://report-check.invalid/x.png" in requests
    assert evaluate(browser, session, "document.documentElement.scrollWidth") > WIDTH
