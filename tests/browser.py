"""A real headless Chromium for page tests, driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: NUL-separated JSON on file descriptors 3 and 4), so no driver or
download is needed. Offline: every host lookup fails."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any


def find_chromium() -> str | None:
    return next((path for name in ("chromium", "chromium-browser", "google-chrome")
                 if (path := shutil.which(name))), None)


class Chromium:
    """One browser process; :meth:`new_page` opens a tab. The browser's own methods act on its first tab."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser, from_browser = os.pipe(), os.pipe()
        # parent-side copies above fd 10, so the child's dup2 onto 3 and 4 cannot clobber them
        self._child_ends = [fcntl.fcntl(to_browser[0], fcntl.F_DUPFD_CLOEXEC, 10),
                            fcntl.fcntl(from_browser[1], fcntl.F_DUPFD_CLOEXEC, 10)]
        for fd in (to_browser[0], from_browser[1]):
            os.close(fd)
        self._write, self._read = to_browser[1], from_browser[0]
        reads, writes = self._child_ends

        def child() -> None:
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        args = [executable, "--headless", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-gpu",
                "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline: any lookup but loopback fails
                "--window-size=1280,900", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self.log = profile / "chromium.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            preexec_fn=child, close_fds=False)
        for fd in self._child_ends:
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self._events: dict[str | None, list[dict[str, Any]]] = {}
        self.first = self.new_page()

    def new_page(self) -> Page:
        """A new tab with the Page, Runtime, Log and Network domains on."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        return page

    def events(self, session: str | None) -> list[dict[str, Any]]:
        return self._events.setdefault(session, [])

    def pump(self, deadline: float) -> dict[str, Any]:
        """Read one message; events go to their tab's list."""
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError(f"chromium did not answer; see {self.log}")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe; see {self.log}:\n{self.log.read_text()[-2000:]}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "id" not in message:
            self.events(message.get("sessionId")).append(message)
        return message

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
             timeout: float = 60) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self.pump(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    # the first tab's methods, for tests that need one
    def open(self, url: str, timeout: float = 60) -> None:
        self.first.open(url, timeout)

    def evaluate(self, expression: str) -> Any:
        return self.first.evaluate(expression)

    def errors(self) -> list[str]:
        return self.first.errors()

    def requests(self) -> list[str]:
        return self.first.requests()

    def screenshot(self, path: Path) -> None:
        self.first.screenshot(path)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._write, self._read):
            os.close(fd)


class Page:
    """One tab of a :class:`Chromium`."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser, self.session = browser, session

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.browser.events(self.session)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, session=self.session)

    def open(self, url: str, timeout: float = 60) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.call("Page.navigate", {"url": url})
        self.wait_for_event("Page.loadEventFired", timeout)

    def reload(self, timeout: float = 60) -> None:
        self.events.clear()
        self.call("Page.reload")
        self.wait_for_event("Page.loadEventFired", timeout)

    def wait_for_event(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.browser.pump(deadline)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 20) -> Any:
        """Evaluate ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true: {expression}")
            time.sleep(0.05)

    def press(self, key: str, *, repeat: bool = False) -> None:
        """Type one key as a person would (keydown, then keyup); ``repeat`` sends it as a held
        key's repeats are sent."""
        base = {"key": key, "code": f"Key{key.upper()}" if key.isalpha() and len(key) == 1 else key}
        if len(key) == 1:
            base["text"] = key
        self.call("Input.dispatchKeyEvent", {"type": "keyDown", "autoRepeat": repeat, **base})
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": base["code"]})

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen since the last :meth:`open`."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console." + params["type"] + ": "
                             + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry']['text']}")
            elif method == "Network.loadingFailed":
                found.append(f"load failed: {params.get('errorText')}")
        return found

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> None:
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
