"""Headless Chromium (Debian's) driven by Playwright, for the console's browser tests.

    with ConsoleBrowser(user_data_dir) as browser:
        page = browser.new_page()            # records script errors for `assert_clean`

Never downloads a browser: it launches /usr/bin/chromium, so `playwright install`
is not needed (and could not run here).
"""

from __future__ import annotations

import os
import pathlib
import shutil
from types import TracebackType
from typing import Any

CHROMIUM = os.environ.get("CONSOLE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chromium logs every 4xx/5xx answer to fetch() as a console error; the console
# shows those itself, so only other errors count against a page.
EXPECTED_CONSOLE_ERRORS = ("Failed to load resource",)


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if shutil.which(CHROMIUM) is None:
        return f"no Chromium at {CHROMIUM} (make setup installs Debian's chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make setup installs the dev dependencies)"
    return None


class ConsolePage:
    """A Playwright page that remembers uncaught script errors, console errors and
    every request the gateway refused (4xx/5xx).

    The console asks only for what it may have: a refused request counts against
    the page unless the test provoked it and said so with `expect_refusal`.
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.refused: list[str] = []
        self._expected: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.refused.append(f"{response.status} {response.request.method} {response.url}")

    def expect_refusal(self, url_part: str) -> None:
        """A request to a URL containing `url_part` is meant to be refused in this test."""
        self._expected.append(url_part)

    def unexpected_refusals(self) -> list[str]:
        return [r for r in self.refused if not any(part in r for part in self._expected)]

    def _console(self, message: Any) -> None:
        if message.type == "error" and not message.text.startswith(EXPECTED_CONSOLE_ERRORS):
            self.errors.append(f"console: {message.text}")

    def assert_clean(self) -> None:
        assert self.errors == [], "the console page reported errors:\n" + "\n".join(self.errors)
        refused = self.unexpected_refusals()
        assert refused == [], "the console sent requests that were refused:\n" + "\n".join(refused)

    def assert_accessible(self) -> None:
        """No WCAG 2.1 A/AA violation axe-core can find on the page as it is now."""
        from axe_playwright_python.sync_playwright import Axe

        options = {
            "resultTypes": ["violations"],
            "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
        }
        violations = Axe().run(self.page, options=options).response["violations"]
        found = [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(node["target"]) for node in v["nodes"][:3])
            for v in violations
        ]
        assert not found, "accessibility violations:\n" + "\n".join(found)


class ConsoleBrowser:
    def __init__(self, user_data_dir: pathlib.Path) -> None:
        self.user_data_dir = user_data_dir
        self._playwright: Any = None
        self._context: Any = None

    def __enter__(self) -> ConsoleBrowser:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self._context = self._playwright.chromium.launch_persistent_context(
                str(self.user_data_dir),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1360, "height": 900},
            )
            # Generous: the machine is shared and the stack runs beside the browser.
            self._context.set_default_timeout(60_000)
        except BaseException:
            self._playwright.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._context is not None:
                self._context.close()
        finally:
            self._playwright.stop()

    def new_page(self) -> ConsolePage:
        return ConsolePage(self._context.new_page())
