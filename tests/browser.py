"""A headless Chromium for tests, driven through the DevTools protocol (CDP) over one websocket.

    with Chromium.launch(tmp_path / "chromium") as browser:
        browser.navigate(page.as_uri())
        title = browser.evaluate("document.title")
        png = decode_png(browser.screenshot())

Debian's ``chromium`` package is installed by ``make browser``, a prerequisite of ``make test``.
:func:`chromium_or_skip` finds it (or the executable named by ``DAC7_TEST_CHROMIUM``); when it is
missing the test is skipped, unless the environment variable ``CI`` is set: CI must run the
browser tests, so there it fails (as the database fixtures in conftest.py do).

The websocket client is ``websockets`` (already locked, through uvicorn[standard]); screenshots
are decoded with the standard library only (``zlib``, ``struct``), so this adds no dependency.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import time
import zlib
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pytest
from websockets.sync.client import ClientConnection, connect

#: Flags for a throwaway headless browser that also runs as root in a container (no user
#: namespaces, a small /dev/shm, no GPU). The sandbox is off: it only opens pages the test wrote.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
)


class BrowserError(RuntimeError):
    """Chromium did not start, did not answer in time, or a page or script failed."""


def chromium_or_skip() -> str:
    """The Chromium executable; skips the test when there is none, fails it in CI."""
    found = os.environ.get("DAC7_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Chromium is not installed (no `chromium` on PATH)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the browser tests: run `make browser`", pytrace=False)
    pytest.skip(f"{message}; run `make browser` (Debian's chromium package) to run this test")


class Chromium:
    """One headless browser with one page: launch, navigate, evaluate, screenshot, close."""

    def __init__(
        self, stack: ExitStack, process: subprocess.Popen[bytes], ws: ClientConnection, timeout: float
    ) -> None:
        self._stack = stack  # closes the connection, then stops the process
        self._process = process
        self._ws = ws
        self._timeout = timeout
        self._ids = 0
        self._session: str | None = None
        self._events: list[dict[str, Any]] = []

    @classmethod
    def launch(
        cls,
        profile: Path,
        *,
        executable: str | None = None,
        width: int = 1280,
        height: int = 800,
        timeout: float = 15.0,
    ) -> Self:
        """Start Chromium with a fresh profile in ``profile`` (its log goes to ``chromium.log`` there).

        The page's viewport is exactly ``width`` x ``height`` CSS pixels at scale 1, so a
        screenshot's pixels and the page's coordinates (``getBoundingClientRect``) coincide.
        """
        profile.mkdir(parents=True, exist_ok=True)
        port_file = profile / "DevToolsActivePort"  # Chromium writes its port there (port 0: any free port)
        port_file.unlink(missing_ok=True)
        args = [
            executable or chromium_or_skip(),
            *FLAGS,
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        stack = ExitStack()
        with (profile / "chromium.log").open("wb") as log:
            # A session of its own: close() can end the browser and its helper processes together.
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        stack.callback(_stop, process)
        try:
            url = _devtools_url(port_file, process, profile, time.monotonic() + timeout)
            # proxy=None: a proxy from the environment must not see a connection to 127.0.0.1.
            ws = stack.enter_context(connect(url, proxy=None, compression=None, max_size=None, open_timeout=timeout))
            browser = cls(stack, process, ws, timeout)
            target = browser._call("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
            attached = browser._call("Target.attachToTarget", {"targetId": target, "flatten": True}, page=False)
            browser._session = attached["sessionId"]
            browser.send("Page.enable")
            browser.send(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
            return browser
        except BaseException:
            stack.close()
            raise

    def send(self, method: str, /, **params: Any) -> dict[str, Any]:
        """One DevTools command to the page (``Page.*``, ``Runtime.*``, ...); returns its result."""
        return self._call(method, params, page=True)

    def navigate(self, url: str) -> None:
        """Open ``url`` and wait until it has loaded, fonts included."""
        self._events.clear()
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"Chromium could not open {url}: {result['errorText']}")
        self._event("Page.loadEventFired")
        self.evaluate("document.fonts.ready.then(() => true)")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"JavaScript failed: {details.get('exception', {}).get('description') or details}")
        return result["result"].get("value")

    def call(self, function: str, *args: Any) -> Any:
        """``evaluate`` of a JavaScript function's source applied to JSON arguments."""
        return self.evaluate(f"({function})(...{json.dumps(args)})")

    def screenshot(self) -> bytes:
        """A PNG of the viewport as rendered."""
        return base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        """Close the browser (politely, then by signal) and the connection; safe to call twice."""
        if self._process.poll() is None:
            with suppress(Exception):  # already gone, or not answering: _stop ends it
                self._call("Browser.close", {}, page=False, timeout=2.0)
        self._stack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, params: dict[str, Any], *, page: bool, timeout: float | None = None) -> dict[str, Any]:
        self._ids += 1
        message: dict[str, Any] = {"id": self._ids, "method": method, "params": params}
        if page:
            message["sessionId"] = self._session
        self._ws.send(json.dumps(message))
        answer = self._receive(lambda m: m.get("id") == message["id"], method, timeout)
        if "error" in answer:
            raise BrowserError(f"{method} failed: {answer['error'].get('message')} {answer['error'].get('data', '')}")
        return answer["result"]

    def _event(self, method: str) -> dict[str, Any]:
        for i, event in enumerate(self._events):
            if event["method"] == method:
                return self._events.pop(i)
        return self._receive(lambda m: m.get("method") == method, method, None)

    def _receive(self, wanted: Callable[[dict[str, Any]], bool], what: str, timeout: float | None) -> dict[str, Any]:
        """Messages until the wanted one; events seen on the way are kept for :meth:`_event`."""
        limit = timeout or self._timeout
        deadline = time.monotonic() + limit
        while True:
            try:
                message = json.loads(self._ws.recv(timeout=max(deadline - time.monotonic(), 0)))
            except TimeoutError:
                raise BrowserError(f"Chromium did not answer {what} within {limit:g} s") from None
            if wanted(message):
                return message
            if "method" in message:
                self._events.append(message)


def _devtools_url(port_file: Path, process: subprocess.Popen[bytes], profile: Path, deadline: float) -> str:
    """The browser's websocket address, from the DevToolsActivePort file Chromium writes at start."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(f"Chromium exited with code {process.returncode} at start; see {profile}/chromium.log")
        lines = port_file.read_text().split() if port_file.exists() else []
        if len(lines) == 2:  # "<port>\n/devtools/browser/<id>", written in one go
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise BrowserError(f"Chromium did not open its DevTools port in time; see {profile}/chromium.log")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Wait briefly for the browser to exit, then end its process group (only what it started)."""
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # its helpers (renderer, zygote) may outlive it
    process.wait()


@dataclass(frozen=True, slots=True)
class Png:
    """A decoded 8-bit RGB or RGBA PNG: ``rows[y]`` holds ``width * channels`` bytes."""

    width: int
    height: int
    channels: int
    rows: tuple[bytes, ...]

    def luminance(self, left: float, top: float, right: float, bottom: float) -> list[int]:
        """Luma (0-255, ITU-R 601) of every pixel in a box, in page pixels, clipped to the image."""
        x0, x1 = max(math.floor(left), 0), min(math.ceil(right), self.width)
        y0, y1 = max(math.floor(top), 0), min(math.ceil(bottom), self.height)
        c = self.channels
        return [
            (299 * row[i] + 587 * row[i + 1] + 114 * row[i + 2]) // 1000
            for row in self.rows[y0:y1]
            for i in range(x0 * c, x1 * c, c)
        ]


def decode_png(data: bytes) -> Png:
    """Decode a PNG as Chromium writes screenshots (8-bit RGB/RGBA, not interlaced), checking every CRC."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG (bad signature)")
    pos, header, idat = 8, b"", bytearray()
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"PNG chunk {kind!r} at byte {pos}: bad CRC")
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: bit depth {depth}, colour type {colour}, interlace {interlace}")
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise ValueError(f"PNG data is {len(raw)} bytes, expected {height * (stride + 1)}")
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels)
        rows.append(row)
        previous = row
    return Png(width, height, channels, tuple(rows))


def _unfilter(kind: int, row: bytearray, up: bytes, bpp: int) -> bytes:
    """Undo one scanline's PNG filter (RFC 2083, section 6)."""
    n = len(row)
    if kind == 1:  # Sub
        for i in range(bpp, n):
            row[i] = (row[i] + row[i - bpp]) & 0xFF
    elif kind == 2:  # Up
        row = bytearray((a + b) & 0xFF for a, b in zip(row, up, strict=True))
    elif kind == 3:  # Average
        for i in range(n):
            row[i] = (row[i] + ((row[i - bpp] if i >= bpp else 0) + up[i]) // 2) & 0xFF
    elif kind == 4:  # Paeth
        for i in range(n):
            a, b, c = (row[i - bpp], up[i], up[i - bpp]) if i >= bpp else (0, up[i], 0)
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    elif kind != 0:
        raise ValueError(f"PNG filter type {kind} does not exist")
    return bytes(row)
