"""Headless-browser screenshots of built book pages, and a check that their math and tables rendered.

    python -m dimr reproduce --profile cpu          # or: jupyter-book build .   (builds _build/html)
    python scripts/screenshot_book.py                # multi-scale loss, guidance, distortion pages
    python scripts/screenshot_book.py notebooks/tdln book/evidence --out /tmp/shots

Needs a Chromium (Debian: ``apt-get install chromium-headless-shell`` or ``chromium``). For each page it
writes ``<out>/<page>.png`` (the top of the page at 1280 px width) and prints what the browser's DOM
holds after MathJax ran: typeset formulas (``mjx-container``), HTML tables, and any ``$$``/``\\(`` left
as raw text — which would mean math did not render. Exit status 1 if a page has raw math left.
Nothing here is a test: the book build is too slow for the test suite.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
DEFAULT_PAGES = ("notebooks/multiscale_loss", "notebooks/guidance", "notebooks/distortion")


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    sys.exit(f"no Chromium found (tried {', '.join(BROWSERS)}); apt-get install chromium-headless-shell")


def chrome(exe: str, *args: str) -> subprocess.CompletedProcess:
    # virtual time lets MathJax finish typesetting before the DOM is dumped or the screenshot taken
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=20000", *args], capture_output=True, text=True, timeout=180)


def visible_text(dom: str) -> str:
    """The page's text outside scripts, styles, code blocks and typeset math."""
    dom = re.sub(r"<(script|style|pre|mjx-container)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", default=list(DEFAULT_PAGES), help="pages, as in _toc.yml")
    ap.add_argument("--html", default="_build/html", help="the built book")
    ap.add_argument("--out", default="_build/screenshots", help="where the PNGs go")
    ap.add_argument("--height", type=int, default=2400, help="window height in pixels")
    args = ap.parse_args()
    exe, out = browser(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bad = 0
    for page in args.pages:
        path = (Path(args.html) / f"{page}.html").resolve()
        if not path.exists():
            print(f"{page}: not built ({path})")
            bad += 1
            continue
        png = out / f"{page.replace('/', '_')}.png"
        chrome(exe, f"--window-size=1280,{args.height}", f"--screenshot={png}", path.as_uri())
        dom = chrome(exe, "--dump-dom", path.as_uri()).stdout
        raw = re.findall(r"\$\$|\\\(|\\\[", visible_text(dom))
        tables = len(re.findall(r"<table\b", dom))
        formulas = len(re.findall(r"<mjx-container\b", dom))
        print(f"{page}: {formulas} typeset formulas, {tables} tables, {len(raw)} raw math delimiters -> {png}")
        bad += bool(raw)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
