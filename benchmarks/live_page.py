"""What the live fill-mask box costs a reader: bytes and time, in Chromium, on the built book.

Serves ``_build/html`` on localhost (build the book first: ``jupyter-book build .``), opens a page with
the box and one without, and prints
- the bytes each page fetches before any question (the box's own script and style sheet are the
  difference), and
- what the first question fetches (the runtime, the model, its tokenizer) and how long it takes from
  the click to the answer on the page, against the median of the next questions (model loaded).

    python benchmarks/live_page.py [--page book/05_pretraining] [--repeats 10]

Uses the system's Chromium (or MLM_CHROMIUM) through Playwright, like tests/test_browser.py.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import statistics
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SENTENCES = ["Open the [MASK] and read its contents.", "Return a [MASK] of the [MASK] in the dictionary.",
             "The result is a new tensor with the same [MASK] as the tensor you passed in."]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request on stderr
        pass


def serve():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class Bytes:
    """Body bytes of every response a tab receives, by file name."""

    def __init__(self, tab):
        self.files: dict[str, int] = {}
        tab.on("requestfinished", self.add)

    def add(self, request):
        self.files[request.url.split("?")[0]] = request.sizes()["responseBodySize"]

    def total(self) -> int:
        return sum(self.files.values())


def ask(tab, sentence: str) -> float:
    """Milliseconds from the click to the answer on the page."""
    tab.fill("#live-fill-mask input[type=text]", sentence)
    start = tab.evaluate("() => performance.now()")
    tab.click("#live-fill-mask button")
    tab.wait_for_function("() => ['answered', 'error'].includes(document.querySelector('#live-fill-mask').dataset.state)",
                          timeout=120000)
    state = tab.evaluate("() => document.querySelector('#live-fill-mask').dataset.state")
    if state != "answered":
        raise SystemExit(tab.locator("#live-fill-mask .mlml-error").inner_text())
    return tab.evaluate("() => performance.now()") - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", default="book/05_pretraining")
    parser.add_argument("--without", default="book/04_encoder", help="a page without the box, for comparison")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if not (HTML / f"{args.page}.html").is_file():
        raise SystemExit(f"{HTML / args.page}.html is missing: build the book first (jupyter-book build .)")
    chromium = os.environ.get("MLM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    server, site = serve()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        print(f"Chromium {browser.version}, {os.cpu_count()} cores, served from localhost (no network latency)")
        rows = {}
        for page in (args.without, args.page):
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            seen = Bytes(tab)
            tab.goto(site + page + ".html", wait_until="networkidle")
            rows[page] = seen.total()
            if page == args.page:
                before = dict(seen.files)
                first = ask(tab, SENTENCES[0])
                fetched = {u.rsplit("/", 1)[-1]: n for u, n in seen.files.items() if u not in before}
                later = [ask(tab, SENTENCES[i % len(SENTENCES)]) for i in range(1, args.repeats + 1)]
                box_files = {u.rsplit("/", 1)[-1]: n for u, n in before.items() if "live-fill-mask." in u}
            tab.close()
        browser.close()
    server.shutdown()
    print(f"before any question: {args.without} fetches {rows[args.without]:,} bytes; {args.page} "
          f"{rows[args.page]:,} bytes, of which the box's script and style sheet "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(box_files.items())))
    print("the first question fetches " + ", ".join(f"{k} {v:,}" for k, v in sorted(fetched.items(), key=lambda kv: -kv[1]))
          + f": {sum(fetched.values()):,} bytes ({sum(fetched.values()) / 1e6:.1f} MB)")
    print(f"first answer (fetch, compile, load, tokenize, run): {first:,.0f} ms; the next {args.repeats} answers: "
          f"median {statistics.median(later):,.0f} ms (min {min(later):,.0f}, max {max(later):,.0f}); "
          f"first ÷ later: {first / statistics.median(later):.0f}×")


if __name__ == "__main__":
    main()
