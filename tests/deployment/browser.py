"""The Airflow UI in headless Chromium: Playwright for Python driving Debian's ``chromium``.

No browser is downloaded (Playwright's own builds cannot be fetched here): ``executable_path``
points at the system binary. The login is the ``_token`` cookie the UI itself keeps after the
login form, holding a token from the auth endpoint.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, sync_playwright


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("the browser checks need Debian's chromium: apt-get install chromium")
    return path


@contextmanager
def logged_in_page(base_url: str, token: str) -> Iterator[Page]:
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses its sandbox as root, which CI and the dev machines are
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_cookies([{"name": "_token", "value": token, "url": base_url}])
            page = context.new_page()
            page.set_default_timeout(300_000)  # a deadline: Chromium and the UI on a loaded machine
            yield page
        finally:
            browser.close()


def open_connection_form(page: Page, base_url: str, conn_id: str) -> None:
    """The connection list, then the row's Edit button: the modal form a user edits."""
    page.goto(f"{base_url}/connections")
    page.get_by_role("row").filter(has_text=conn_id).get_by_role("button", name="Edit Connection").click()
    page.get_by_role("dialog").wait_for()


def connection_test_toast(page: Page, base_url: str, conn_id: str) -> str:
    """Click the row's Test button; the toast's text (title and detail)."""
    page.goto(f"{base_url}/connections")
    page.get_by_role("row").filter(has_text=conn_id).get_by_role("button", name="Test Connection").click()
    toast = page.get_by_text("Test Connection Successful").or_(page.get_by_text("Test Connection Failed"))
    toast.first.wait_for()
    return toast.first.locator("xpath=..").inner_text()
