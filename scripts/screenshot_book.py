"""Headless-browser screenshots of built book pages, and a check that their math and tables rendered.

    python -m dimr reproduce --profile cpu          # or: jupyter-book build .   (builds _build/html)
    python scripts/screenshot_book.py                # multi-scale loss, Table 2 and Evidence pages
    python scripts/screenshot_book.py notebooks/tdln book/evidence --out /tmp/shots

Needs a Chromium (Debian: ``apt-get install chromium-headless-shell`` or ``chromium``). For each page it
writes ``<out>/<page>.png`` (the top of the page at 1280 px width) and prints what the browser's DOM
holds after MathJax ran: typeset formulas (``mjx-container``), HTML tables, and any ``$$``/``\\(`` left
as raw text — which would mean math did not render. It then checks the downloads of every notebook page of
the book (``dimr.reproduction.editions``): the menu offers the ``.ipynb`` and the ``.py``, a chapter also its student
edition, and the files are there. Exit status 1 if a page has raw math left or a download is missing.
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
DEFAULT_PAGES = ("notebooks/multiscale_loss", "book/tables/table2", "book/evidence")


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


def check_downloads(html_root: Path) -> int:
    """Every notebook page of the book offers its .ipynb and .py (and a chapter its student edition) in the
    download menu, and the files exist; prints one line per page that lacks one. Returns the number of those."""
    from dimr.reproduction.editions import chapter_pages, notebook_pages

    chapters, bad = set(chapter_pages()), 0
    # a page not built (a partial build) is not counted: the screenshots above say so for the pages they need
    pages = [p for p in notebook_pages() if (html_root / f"{p}.html").exists()]
    for page in pages:
        path = html_root / f"{page}.html"
        dom = path.read_text(encoding="utf-8")
        wanted = {"download-notebook-button": html_root / "_sources" / f"{page}.ipynb",
                  "download-source-button": html_root / "_sources" / f"{page}.py"}
        if page in chapters:
            wanted["download-student-notebook-button"] = html_root / "_sources" / f"{page}-student.ipynb"
        missing = [label for label, file in wanted.items() if label not in dom or not file.exists()]
        if missing:
            print(f"{page}: missing {', '.join(missing)}")
            bad += 1
    print(f"downloads: {len(pages) - bad} of the {len(pages)} notebook pages built offer .ipynb and .py"
          f" (chapters also the student edition)")
    return bad


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
    bad += check_downloads(Path(args.html))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
