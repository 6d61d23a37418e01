"""Headless Chromium for the tests that look at pages (the HTML report, the documentation site).

Debian's ``chromium`` (or ``LSTMAE_CHROMIUM``), driven by playwright, which never
downloads a browser of its own. Without a browser these tests skip on a
developer's machine; in CI (``CI=true``) they fail, so that a missing install
step shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

#: The flags this machine's closed network needs: no background connections, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str, what: str = "browser tests") -> None:
    """Skip on a developer's machine; in CI (CI=true) a missing browser (or site) is a failure."""
    if in_ci():
        pytest.fail(f"{what} cannot run in CI: {reason}; .ci/run must install chromium and the dev extra (and run make docs)")
    pytest.skip(reason)


def chromium_path() -> str | None:
    found = os.environ.get("LSTMAE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).exists() else None


@contextmanager
def chromium(what: str = "browser tests") -> Iterator[Any]:
    """A launched headless Chromium (playwright's Browser), closed afterwards."""
    executable = chromium_path()
    if executable is None:
        unavailable("no Chromium (apt-get install chromium, or set LSTMAE_CHROMIUM)", what)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')", what)
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
