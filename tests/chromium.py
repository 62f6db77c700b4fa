"""Headless Chromium for tests that look at a rendered page: its screenshot and its layout.

The report page itself has no script. To know where each card landed, `layout` opens a copy
of the page with a small script appended that writes every card's bounding box into the DOM,
and reads it back with --dump-dom; the screenshot is taken of the original page, whose layout
is the same (the script changes attributes only).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path

import pytest

INSTALL_HINT = ("Chromium is not installed: `apt-get install chromium` (Debian/Ubuntu), or set "
                "GOALPOST_CHROMIUM to its binary; .ci/run installs it")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1", "--mute-audio"]
WIDTH = 1280

_PROBE = """<script>
document.body.setAttribute('data-height', String(document.documentElement.scrollHeight));
for (const el of document.querySelectorAll('[data-title]')) {
  const r = el.getBoundingClientRect();
  const body = el.querySelector('.body').getBoundingClientRect();
  el.setAttribute('data-box', JSON.stringify([r.left, r.top + window.scrollY, r.width, r.height,
    body.left, body.top + window.scrollY, body.width, body.height]));
}
</script>"""


def find() -> str | None:
    """The Chromium binary: GOALPOST_CHROMIUM, else the first on PATH."""
    for candidate in (os.environ.get("GOALPOST_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


# Mark a test that opens a page: skipped, saying how to install Chromium, before any of its
# (slow) fixtures run.
needed = pytest.mark.skipif(find() is None, reason=INSTALL_HINT)


def _run(args: list[str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="goalpost-chromium-") as profile:
        binary = find()
        assert binary, INSTALL_HINT
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)


@dataclass(frozen=True)
class Box:
    """A card on the page: its whole box and its body (the chart area), in page pixels."""

    left: float
    top: float
    width: float
    height: float
    body: tuple[float, float, float, float]


@dataclass(frozen=True)
class Layout:
    height: int
    cards: dict[str, Box]
    dom: str


def layout(page: Path) -> Layout:
    """Where every card is after layout, the page height, and the DOM as rendered."""
    html = page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>")
    probe = page.with_name(page.stem + ".probe.html")
    probe.write_text(html, encoding="utf-8")
    try:
        done = _run(["--virtual-time-budget=2000", f"--window-size={WIDTH},900",
                     "--dump-dom", probe.as_uri()])
    finally:
        probe.unlink()
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    height = int(re.search(r'data-height="(\d+)"', dom).group(1))
    cards = {}
    for match in re.finditer(r'data-title="([^"]*)"[^>]*?data-box="([^"]*)"', dom):
        values = json.loads(match.group(2).replace("&quot;", '"'))
        title = match.group(1).replace("&amp;", "&").replace("&quot;", '"')
        cards[title] = Box(*values[:4], body=tuple(values[4:]))
    return Layout(height, cards, dom)


def screenshot(page: Path, png: Path, height: int) -> Path:
    """A PNG of the whole page, WIDTH pixels wide and `height` tall."""
    done = _run([f"--screenshot={png}", f"--window-size={WIDTH},{height}", page.as_uri()])
    assert png.exists(), done.stderr[-2000:]
    return png


# Headless Chromium will not make a window narrower than 500 pixels; a phone's width is had
# by laying the page out in an iframe that wide (srcdoc: same origin, so its layout can be read).
MIN_WINDOW = 500
_FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="page" width="{width}" height="{height}" style="border:0;display:block"
 srcdoc="{srcdoc}"></iframe>
<script>
const frame = document.getElementById('page');
frame.addEventListener('load', () => {{
  const doc = frame.contentDocument;
  const right = Math.max(...Array.from(doc.querySelectorAll('body *'),
                                       el => el.getBoundingClientRect().right));
  document.body.setAttribute('data-extent', JSON.stringify([
    doc.documentElement.scrollWidth, doc.documentElement.scrollHeight, right]));
}});
</script></body></html>"""


@dataclass(frozen=True)
class Extent:
    """How far a page reaches in a viewport `width` pixels wide: its scroll width and
    height, and the right edge of its rightmost element."""

    width: int
    scroll_width: int
    scroll_height: int
    rightmost: float


def _framed(page: Path, width: int, height: int) -> Path:
    framed = page.with_name(page.stem + f".{width}px.html")
    framed.write_text(_FRAME.format(width=width, height=height, srcdoc=html_escape(
        page.read_text(encoding="utf-8"), quote=True)), encoding="utf-8")
    return framed


def extent(page: Path, width: int) -> Extent:
    """The page laid out `width` pixels wide (a phone: 400)."""
    framed = _framed(page, width, 900)
    try:
        done = _run(["--virtual-time-budget=3000", f"--window-size={max(width, MIN_WINDOW)},900",
                     "--dump-dom", framed.as_uri()])
    finally:
        framed.unlink()
    assert done.returncode == 0, done.stderr[-2000:]
    values = json.loads(re.search(r'data-extent="([^"]*)"', done.stdout).group(1)
                        .replace("&quot;", '"'))
    return Extent(width, int(values[0]), int(values[1]), float(values[2]))


def narrow_screenshot(page: Path, png: Path, width: int, height: int) -> Path:
    """A PNG of the page laid out `width` pixels wide, `height` tall (cropped to the frame)."""
    from PIL import Image

    framed = _framed(page, width, height)
    try:
        done = _run(["--virtual-time-budget=3000", f"--screenshot={png}",
                     f"--window-size={max(width, MIN_WINDOW)},{height}", framed.as_uri()])
    finally:
        framed.unlink()
    assert png.exists(), done.stderr[-2000:]
    Image.open(png).crop((0, 0, width, height)).save(png)
    return png
