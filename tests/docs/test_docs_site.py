"""The documentation site built by `make docs`: its pages in a real browser, and its links.

The site is read from docs/_build/html (or LSTMAE_DOCS_HTML). The browser
tests open the home page, the LSTMAutoencoder API page and a gallery page in
headless Chromium (Debian's ``chromium``, driven by playwright, as the HTML
report's tests do) and check what a reader sees: the heading, every image
loaded. The link test reads every built page and resolves each relative
link to a file of the site.

Without a built site or Chromium they skip locally; in CI (``CI=true``, where
.ci/run runs ``make docs`` first) they fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from browser import chromium, unavailable as skip_or_fail
from paths import ROOT


SITE = Path(os.environ.get("LSTMAE_DOCS_HTML") or ROOT / "docs" / "_build" / "html")
#: (page, text its <title> holds, text of its first <h1>)
PAGES = [
    ("index.html", "lstmae", "lstmae"),
    ("generated/lstmae.LSTMAutoencoder.html", "LSTMAutoencoder", "lstmae.LSTMAutoencoder"),
    ("auto_examples/plot_1_sine_anomaly.html", "A sine with an injected anomaly", "A sine with an injected anomaly"),
]


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; in CI (CI=true, where .ci/run runs make docs first) a failure."""
    skip_or_fail(reason, "the documentation site")


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").is_file():
        unavailable(f"no built site at {SITE} (run make docs)")
    return SITE


@pytest.fixture(scope="module")
def browser(site):
    with chromium("the documentation site") as launched:
        yield launched


# ------------------------------------------------------------- sources


def test_the_guide_shows_what_lstmae_explain_prints_for_its_command():
    """docs/guide/concepts.md quotes `lstmae explain` for one command: the quote must stay the real output."""
    page = (ROOT / "docs" / "guide" / "concepts.md").read_text(encoding="utf-8")
    command = re.search(r"`lstmae explain (--length [^`]*)`", page).group(1).split()
    quoted = re.search(r"```text\n(lstmae explain:.*?)```", page, re.S).group(1)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""), COLUMNS="200")
    printed = subprocess.run(
        [sys.executable, "-m", "lstmae", "explain", *command], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert quoted == printed


# ------------------------------------------------------------- links


class _Links(HTMLParser):
    """The href of every <a> and <link>, the src of every <img> and <script>, and every id, of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "link": "href", "img": "src", "script": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.targets.append(value)
            elif name == "id" and value:
                self.ids.add(value)


def _parsed(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parser


def pages_of(site: Path) -> list[Path]:
    """The built pages; _static/ holds the theme's templates, copied as they are, not pages."""
    return sorted(page for page in site.rglob("*.html") if "_static" not in page.relative_to(site).parts)


def broken_links(site: Path) -> list[str]:
    """'page -> target' for every relative link of a built page that names no file of the site.

    External links (a scheme or //host), ``mailto:``/``data:`` and links to an anchor of
    the same page are not checked; a link to a folder must hold index.html. A link to an
    anchor of another page (``api.html#lstmae.window_starts``) needs that id on that page.
    """
    broken = []
    ids: dict[Path, set[str]] = {}
    for page in pages_of(site):
        for target in _parsed(page).targets:
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            resolved = (page.parent / unquote(parts.path)).resolve()
            if resolved.is_dir():
                resolved = resolved / "index.html"
            inside = resolved == site.resolve() or site.resolve() in resolved.parents
            if not inside or not resolved.is_file():
                broken.append(f"{page.relative_to(site)} -> {target}")
            elif parts.fragment and resolved.suffix == ".html":
                if resolved not in ids:
                    ids[resolved] = _parsed(resolved).ids
                if unquote(parts.fragment) not in ids[resolved]:
                    broken.append(f"{page.relative_to(site)} -> {target}")
    return broken


def test_every_relative_link_of_the_site_names_a_file_of_it(site):
    pages = pages_of(site)
    assert len(pages) > 20  # the guide, the API pages and the gallery were all built
    assert broken_links(site) == []


def test_broken_links_finds_a_missing_page_file_or_anchor_and_ignores_external_and_anchor_only_links(tmp_path):
    (tmp_path / "guide").mkdir()
    (tmp_path / "logo.png").write_bytes(b"png")
    (tmp_path / "index.html").write_text(
        '<a href="guide/">guide</a> <a href="guide/missing.html#top">gone</a> <a href="#here">anchor</a>'
        '<a href="https://example.org/x.html">external</a> <img src="logo.png"> <img src="nothing.png">'
        '<a href="../outside.html">outside</a> <h1 id="top">lstmae</h1>',
        encoding="utf-8",
    )
    (tmp_path / "guide" / "index.html").write_text(
        '<a href="../index.html#top">home</a> <a href="../index.html#gone">moved</a>', encoding="utf-8"
    )
    (tmp_path.parent / "outside.html").write_text("", encoding="utf-8")
    assert broken_links(tmp_path) == [
        "guide/index.html -> ../index.html#gone",
        "index.html -> guide/missing.html#top", "index.html -> nothing.png", "index.html -> ../outside.html",
    ]


# ------------------------------------------------------------- in a browser


@pytest.mark.parametrize("path, title, heading", PAGES)
def test_page_renders_with_its_heading_and_every_image_loaded(browser, site, path, title, heading):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto((site / path).resolve().as_uri(), wait_until="load")
        assert title in page.title()
        assert heading in page.locator("h1").first.inner_text()
        images = page.evaluate(
            """() => Array.from(document.images).map(img => ({
                   src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth}))"""
        )
        assert [image for image in images if not (image["complete"] and image["width"] > 0)] == []
        if path != PAGES[1][0]:
            assert images, f"{path} should show a figure"  # the report screenshot; the example's plot
        assert errors == []
    finally:
        page.close()


def test_api_page_lists_the_public_methods(browser, site):
    page = browser.new_page()
    try:
        page.goto((site / PAGES[1][0]).resolve().as_uri())
        text = page.locator("main").inner_text()
        for method in ("fit", "anomaly_score", "detect", "encode", "reconstruct", "stream", "explain", "save", "load"):
            assert page.locator(f"[id='lstmae.LSTMAutoencoder.{method}']").count() == 1, method
        assert "Parameters" in text and "timesteps" in text
    finally:
        page.close()
