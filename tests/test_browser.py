"""The online book as a reader sees it: the built HTML (``_build/html``) in a real browser.

Playwright drives the system's Chromium (Debian's ``chromium`` package; no browser download) over
a local HTTP server. Every page of ``_toc.yml`` must load without a console error or a failed
request, render its math and figures, keep its links and Colab buttons right, render the saved
state of its widgets, and keep solutions hidden until asked; the masking explorer must follow the
package's rules. Without Chromium or Playwright the tests skip and say how to install them.

``MLM_SCREENSHOTS=DIR pytest tests/test_browser.py`` also saves screenshots of the intro and
chapter 2 at 1280×900 and 390×844 (a phone) for a person to look at.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

import mlm_lessons as mlm
from mlm_lessons.teaching.live import read_probes
from mlm_lessons.teaching.widgets import rebalance

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = os.environ.get("MLM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("MLM_BROWSER_TESTS") == "required"  # set by .ci/run: there a skip would hide a defect
if CHROMIUM is None and REQUIRED:
    raise RuntimeError("MLM_BROWSER_TESTS=required, but no Chromium was found: apt-get install chromium")
if CHROMIUM is None:
    pytest.skip(
        "browser tests need Chromium: install Debian's package (`apt-get install chromium`) or set "
        "MLM_CHROMIUM to a Chromium or Chrome binary",
        allow_module_level=True,
    )
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    if REQUIRED:
        raise
    pytest.skip("browser tests need Playwright: `pip install playwright` (it drives the system Chromium; "
                "no browser download)", allow_module_level=True)
import yaml

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
PAGES = [TOC["root"], *(c["file"] for c in TOC["chapters"])]
EXPLORER_PAGES = ["book/intro", "book/02_masking"]
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'


# ---------------------------------------------------------------- the site, the browser, the visits

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request on stderr
        pass


@pytest.fixture(scope="session")
def site():
    """The built book served on localhost (built first when ``_build/html`` is missing)."""
    if not (HTML / "book" / "intro.html").exists():
        subprocess.run([shutil.which("jupyter-book") or "jupyter-book", "build", "."], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


class Visit:
    """One page loaded in a fresh tab, with everything that went wrong on the way."""

    def __init__(self, browser, site: str, page: str, viewport=(1280, 900)):
        self.site, self.name = site, page
        self.tab = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self.errors, self.failed, self.external, self.requests = [], [], [], []
        self.tab.on("request", lambda r: self.requests.append(r.url))
        self.tab.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.tab.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.tab.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        self.tab.on("response", lambda r: self.failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)

        def route(r):  # nothing leaves the machine: a CDN request is a defect, not a slow page
            self.external.append(r.request.url)
            r.abort()

        self.tab.route(re.compile(r"^(?!" + re.escape(site) + ").*"), route)
        self.tab.goto(site + page + ".html", wait_until="load")
        self.tab.wait_for_load_state("networkidle")
        self.tab.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")

    def close(self):
        self.tab.close()


@pytest.fixture(scope="module")
def visits(browser, site):
    opened = {}

    def visit(page: str) -> Visit:
        if page not in opened:
            opened[page] = Visit(browser, site, page)
        return opened[page]

    yield visit
    for v in opened.values():
        v.close()


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("id", "name") and v:
                self.ids.add(v)


@functools.lru_cache(maxsize=None)
def ids_in(path: Path) -> frozenset:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return frozenset(parser.ids)


def figures_in(page: str) -> int:
    """How many figures the page's notebook stores in outputs the book shows (0 for a Markdown page)."""
    source = ROOT / f"{page}.ipynb"
    if not source.exists():
        return 0
    cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
    shown = [c for c in cells if c["cell_type"] == "code"
             and not {"remove-cell", "remove-output"} & set(c.get("metadata", {}).get("tags", []))]
    return sum("image/png" in o.get("data", {}) for c in shown for o in c.get("outputs", []))


# ---------------------------------------------------------------- every page

@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_errors_or_outside_requests(visits, page):
    v = visits(page)
    assert v.errors == [], f"{page}: {v.errors}"
    assert v.failed == [], f"{page}: failed requests {v.failed}"
    assert v.external == [], f"{page}: requests leaving the book (a CDN?): {v.external}"


@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset_and_figures_load(visits, page):
    v = visits(page)
    math = v.tab.evaluate("""() => ({
        spans: document.querySelectorAll('.math').length,
        rendered: document.querySelectorAll('.math mjx-container').length,
        errors: document.querySelectorAll('mjx-merror').length,
        text: Array.from(document.querySelectorAll('article p, article li, article td')).map(e => e.innerText).join(' '),
    })""")
    assert math["rendered"] == math["spans"], f"{page}: {math['spans'] - math['rendered']} formulas left untypeset"
    assert math["errors"] == 0
    assert "$$" not in math["text"] and "\\(" not in math["text"], f"{page}: raw TeX in the text"
    images = v.tab.evaluate("""async () => {
        const imgs = Array.from(document.querySelectorAll('article img'));
        imgs.forEach(i => { i.loading = 'eager'; });
        await Promise.all(imgs.map(i => i.decode().catch(() => null)));
        return imgs.map(i => [i.getAttribute('src'), i.naturalWidth]);
    }""")
    broken = [src for src, width in images if width == 0]
    assert broken == [], f"{page}: images that did not load: {broken}"
    assert len(images) >= figures_in(page), f"{page}: {figures_in(page)} figures in the notebook, {len(images)} on the page"


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_and_anchors_resolve(visits, site, page):
    v = visits(page)
    hrefs = v.tab.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    assert hrefs, page
    checked = 0
    for href in hrefs:
        if not href.startswith(site):
            continue
        url, anchor = urldefrag(href)
        path = HTML / unquote(urlparse(url).path.lstrip("/"))
        if path.is_dir():
            path = path / "index.html"
        assert path.is_file(), f"{page}: link to a missing file {href}"
        if anchor and path.suffix == ".html":
            assert unquote(anchor) in ids_in(path), f"{page}: link to a missing anchor {href}"
        checked += 1
    assert checked >= len(PAGES), f"{page}: only {checked} internal links (the navigation has {len(PAGES)})"


@pytest.mark.parametrize("page", PAGES)
def test_colab_button_opens_this_notebook(visits, page):
    v = visits(page)
    links = v.tab.evaluate("() => Array.from(document.querySelectorAll('a[href*=\"colab.research.google.com\"]')).map(a => a.href)")
    source = ROOT / f"{page}.ipynb"
    if not source.exists():
        assert links == [], f"{page} is not a notebook, yet offers Colab: {links}"
        return
    repo = urlparse(CONFIG["repository"]["url"]).path.strip("/")
    book = CONFIG["repository"].get("path_to_book") or ""
    path = "/".join(p for p in (book.strip("/"), f"{page}.ipynb") if p)
    expected = f"{CONFIG['launch_buttons']['colab_url']}/github/{repo}/blob/{CONFIG['repository']['branch']}/{path}"
    assert links and set(links) == {expected}, f"{page}: {links}"


def test_hidden_solutions_open_only_when_asked(visits):
    pages = [p for p in PAGES if (ROOT / f"{p}.ipynb").exists()]
    seen = 0
    for page in pages:
        tab = visits(page).tab
        cells = tab.locator(".cell.tag_solution")
        for i in range(cells.count()):
            cell = cells.nth(i)
            code = cell.locator(".cell_input")
            assert not code.is_visible(), f"{page}: solution {i} is visible before it is asked for"
            cell.locator("details > summary").first.click()
            code.wait_for(state="visible")
            seen += 1
    assert seen >= len(pages) * 3, f"only {seen} solution cells"


# ---------------------------------------------------------------- widgets

@pytest.mark.parametrize("page", [p for p in PAGES if (ROOT / f"{p}.ipynb").exists()])
def test_saved_widgets_render_and_say_they_are_frozen(visits, page):
    tab = visits(page).tab
    views = tab.locator(WIDGET_VIEW).count()
    if views == 0:
        return
    tab.wait_for_function(f"""() => Array.from(document.querySelectorAll('{WIDGET_VIEW}'))
        .every(s => s.previousElementSibling && s.previousElementSibling.classList.contains('widget-subarea')
                    && s.previousElementSibling.childElementCount > 0)""", timeout=15000)
    report = tab.evaluate(f"""() => Array.from(document.querySelectorAll('{WIDGET_VIEW}')).map(s => {{
        const view = s.previousElementSibling, cell = s.closest('.cell');
        let before = cell.previousElementSibling, note = '';
        for (let k = 0; k < 3 && before; k++, before = before.previousElementSibling) note += ' ' + before.innerText;
        return {{height: view.getBoundingClientRect().height, controls: view.querySelectorAll('input, select, button, .widget-slider').length,
                 images: Array.from(view.querySelectorAll('img')).map(i => i.naturalWidth), note}};
    }})""")
    for r in report:
        assert r["height"] > 100 and r["controls"] >= 1, f"{page}: an empty widget {r}"
        assert all(w > 0 for w in r["images"]), f"{page}: a widget's figure did not load"
        assert re.search(r"frozen", r["note"]) and re.search(r"Colab|explorer above", r["note"]), \
            f"{page}: no note that the widget needs a kernel: {r['note'][-300:]}"


# ---------------------------------------------------------------- the masking explorer

def explorer_state(tab, root: str = ".mlm-explorer") -> dict:
    return tab.evaluate(f"""() => {{
        const r = document.querySelector('{root}');
        const pieces = Array.from(r.querySelectorAll('li.mlmx-piece'));
        return {{selected: +r.dataset.selected, eligible: +r.dataset.eligible,
                 fates: pieces.map(p => p.dataset.fate), special: pieces.map(p => p.dataset.special === 'true'),
                 shares: Array.from(r.querySelectorAll('input[data-share]')).map(i => +i.value),
                 view: r.querySelector('.mlmx-view').innerHTML}};
    }}""")


def data_of(tab) -> dict:
    return tab.evaluate("() => document.querySelector('.mlm-explorer').mlmExplorer.data")


@pytest.mark.parametrize("page", EXPLORER_PAGES)
def test_explorer_ratio_slider_selects_as_the_package(visits, page):
    tab = visits(page).tab
    data = data_of(tab)
    n = sum(i not in data["special_ids"] and i != data["pad_id"] for i in data["input_ids"][0])
    slider = tab.locator(".mlm-explorer input[id$='-ratio']")
    slider.focus()
    slider.press("Home")  # keyboard only, as a reader without a mouse would
    value, counts = 1, set()
    for target in (1, 5, 10, 15, 22, 40, 50, 77, 100):
        while value < target:
            slider.press("ArrowRight")
            value += 1
        state = explorer_state(tab)
        assert state["eligible"] == n
        assert state["selected"] == mlm.num_to_select(n, target / 100), f"ratio {target}%"
        assert sum(f != "untouched" for f in state["fates"]) == state["selected"]
        counts.add(state["selected"])
    assert len(counts) >= 6  # the slider really changes the selection
    slider.press("End")
    assert explorer_state(tab)["selected"] == n


@pytest.mark.parametrize("page", EXPLORER_PAGES)
def test_explorer_split_controls_keep_100_percent(visits, page):
    tab = visits(page).tab
    shares = dict(zip(("mask", "random", "keep"), explorer_state(tab)["shares"]))
    for share, key, presses in (("mask", "ArrowLeft", 23), ("random", "ArrowRight", 17), ("keep", "End", 1),
                                ("mask", "ArrowRight", 9), ("random", "Home", 1)):
        control = tab.locator(f".mlm-explorer input[data-share='{share}']")
        control.focus()
        for _ in range(presses):
            before = shares[share]
            control.press(key)
            after = {"ArrowLeft": before - 1, "ArrowRight": before + 1, "End": 100, "Home": 0}[key]
            shares = rebalance(shares, share, max(0, min(100, after)))  # the package's own rule, replayed
            state = explorer_state(tab)
            assert sum(state["shares"]) == 100
            assert state["shares"] == [shares["mask"], shares["random"], shares["keep"]]
    outputs = tab.evaluate("() => Array.from(document.querySelectorAll('.mlm-explorer .mlmx-shares output')).map(o => o.textContent)")
    assert outputs == [f"{shares[k]}%" for k in ("mask", "random", "keep")]


def test_explorer_never_selects_specials_and_draws_random_tokens_from_the_rest(visits):
    tab = visits("book/02_masking").tab
    data = data_of(tab)
    specials = set(data["special_ids"])
    result = tab.evaluate("""(data) => {
        const out = [];
        for (const selection of ['exact', 'bernoulli'])
          for (const whole_word of [false, true])
            for (let seed = 0; seed < 3; seed++) {
              const cfg = {mask_ratio: 1, p_mask: 0, p_random: 1, p_keep: 0, selection, whole_word};
              out.push(mlmExplorer.maskBatch(data, cfg, seed));
            }
        return out;
    }""", data)
    for masked in result:
        for row, ids in zip(masked, data["input_ids"]):
            for fate, new, old in zip(row["fate"], row["inputs"], ids):
                assert (fate == 0) == (old in specials), "a special was selected, or a text piece was not"
                if fate == 2:
                    assert new not in specials
    replaced = {new for masked in result for row in masked for new, f in zip(row["inputs"], row["fate"]) if f == 2}
    assert len(replaced) > 1000  # drawn across the vocabulary, not a handful of ids
    # and in the view: with everything selected, only the specials stay untouched
    tab.locator(".mlm-explorer input[id$='-ratio']").press("End")
    state = explorer_state(tab)
    assert [f == "untouched" for f in state["fates"]] == state["special"] and any(state["special"])


def test_explorer_pure_functions_match_the_package(visits):
    tab = visits("book/02_masking").tab
    data = data_of(tab)
    cases = [(s, c, v) for s in ({"mask": 80, "random": 10, "keep": 10}, {"mask": 0, "random": 0, "keep": 100},
                                 {"mask": 33, "random": 33, "keep": 34}, {"mask": 1, "random": 2, "keep": 97})
             for c in ("mask", "random", "keep") for v in (0, 1, 33, 50, 99, 100)]
    js = tab.evaluate("(cases) => cases.map(([s, c, v]) => mlmExplorer.rebalance(s, c, v))", cases)
    assert js == [rebalance(s, c, v) for s, c, v in cases]
    grid = [(n, r) for n in range(0, 131) for r in range(1, 101)]
    js = tab.evaluate("(grid) => grid.map(([n, r]) => mlmExplorer.numToSelect(n, r / 100))", grid)
    assert js == [mlm.num_to_select(n, r / 100) for n, r in grid]

    import torch

    ids = torch.tensor(data["input_ids"])
    word_ids = [[None if w < 0 else w for w in row] for row in data["word_ids"]]
    configs = [dict(mask_ratio=r / 100, p_mask=m / 100, p_random=x / 100, p_keep=(100 - m - x) / 100,
                    selection=s, whole_word=w)
               for r, m, x in ((15, 80, 10), (40, 50, 25), (100, 0, 100), (3, 100, 0))
               for s in ("exact", "bernoulli") for w in (False, True)]
    js = tab.evaluate("([data, cfgs]) => cfgs.map(c => mlmExplorer.expectedCounts(data, c))", [data, configs])
    for cfg, got in zip(configs, js):
        want = mlm.expected_counts(ids, mlm.MaskingConfig(**cfg), special_ids=data["special_ids"], word_ids=word_ids)
        assert got == pytest.approx(want, rel=1e-9), cfg


@pytest.mark.parametrize("page", EXPLORER_PAGES)
def test_explorer_resample_and_seed_reproduce_a_view(visits, page):
    tab = visits(page).tab
    seed = tab.locator(".mlm-explorer input[id$='-seed']")
    seed.fill("7")
    seed.press("Enter")
    seven = explorer_state(tab)["view"]
    tab.locator(".mlm-explorer button.mlmx-resample").click()
    assert seed.input_value() == "8"
    eight = explorer_state(tab)["view"]
    assert eight != seven
    seed.fill("7")
    seed.press("Enter")
    assert explorer_state(tab)["view"] == seven
    tab.locator(".mlm-explorer button.mlmx-resample").press("Enter")  # the button works from the keyboard
    assert explorer_state(tab)["view"] == eight
    for bad in ("-3", "2.5", ""):  # refused with a message; the last good seed stays
        seed.fill(bad)
        seed.press("Enter")
        assert explorer_state(tab)["view"] == eight
        error = tab.locator(".mlm-explorer .mlmx-error").inner_text()
        assert f'not "{bad}"' in error and "keeps seed 8" in error
        assert seed.get_attribute("aria-invalid") == "true"
    seed.fill("8")
    seed.press("Enter")
    assert tab.locator(".mlm-explorer .mlmx-error").inner_text() == "" and seed.get_attribute("aria-invalid") is None


def test_explorer_is_labelled_and_reachable_by_keyboard(visits):
    tab = visits("book/intro").tab
    unlabelled = tab.evaluate("""() => Array.from(document.querySelectorAll('.mlm-explorer input, .mlm-explorer select'))
        .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.id)""")
    assert unlabelled == []
    assert tab.locator(".mlm-explorer [aria-live]").count() == 1
    controls = tab.evaluate("() => Array.from(document.querySelectorAll('.mlm-explorer input, .mlm-explorer select, .mlm-explorer button')).map(e => e.id || e.className)")
    tab.locator(".mlm-explorer input[id$='-ratio']").focus()
    reached = []
    for _ in range(len(controls) - 1):
        tab.keyboard.press("Tab")
        reached.append(tab.evaluate("() => document.activeElement.id || document.activeElement.className"))
    assert reached == controls[1:]


@pytest.mark.parametrize("page", EXPLORER_PAGES)
@pytest.mark.parametrize("viewport", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_pages_fit_the_screen(browser, site, page, viewport):
    v = Visit(browser, site, page, viewport)
    try:
        widths = v.tab.evaluate("""() => ({page: document.documentElement.scrollWidth,
            explorer: document.querySelector('.mlm-explorer').scrollWidth,
            box: document.querySelector('.mlm-explorer').clientWidth})""")
        assert widths["page"] <= viewport[0], widths
        assert widths["explorer"] <= widths["box"] + 1, f"the explorer overflows its box: {widths}"
        folder = os.environ.get("MLM_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            name = f"{page.split('/')[-1]}-{viewport[0]}x{viewport[1]}"
            v.tab.screenshot(path=str(Path(folder) / f"{name}.png"))
            box = v.tab.evaluate("""() => { const r = document.querySelector('.mlm-explorer').getBoundingClientRect();
                return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; }""")
            # from the whole page, so that the sticky header does not cover a tall explorer
            v.tab.screenshot(path=str(Path(folder) / f"{name}-explorer.png"), full_page=True, clip=box)
        assert v.errors == [] and v.failed == [] and v.external == []
    finally:
        v.close()


# ---------------------------------------------------------------- the live fill-mask box

LIVE_PAGES = ["book/intro", "book/05_pretraining"]
BUNDLE = HTML / "_static" / "live-fill-mask"
PROBES = [row["sentence"] for row in read_probes(ROOT / "data" / "fill_mask_probes.tsv")]
TWO_MASKS = ["Return a new [MASK] with the same [MASK].", "The [MASK] [MASK] of a list is its first item.",
             "[MASK] the file, read its lines, then [MASK] it.", "If the key is [MASK], the [MASK] raises a [MASK]."]
# text a reader may type that the tokenizer must cut exactly as MLMTokenizer: accents, capitals, CJK,
# punctuation of every kind, symbols, control characters, odd spaces, special tokens in odd places
TRICKY = ["Café naïve ÉCOLE façade Ångström", "Σίσυφος ΣΑΣ İstanbul straße ǅemal", "数据 张量 tensor张量 ｆｕｌｌｗｉｄｔｈ",
          "a\tb\nc\r\nd\u00a0e\u2003f\u2028g  h", "zero\u200bwidth soft\u00adhyphen bom\ufeffhere nul\x00char ctrl\x07bell",
          "x=(a+b)*c/d-e; f[g]{h}<i>|j~k`l^m$n%o#p@q!r?s:t,u.v'w\"x&y_z", "„quotes“ «guillemets» — dashes – … ellipsis",
          "emoji 😀 and ☃ snow", "[MASK][MASK]x[MASK].[mask] [Mask] [CLS]in[SEP]side [PAD][UNK]", "a" * 101 + " b" + "c" * 100,
          "ﬁnance ﬂow Ⅻ ① ² ½ µ Ω K", "   leading and trailing   ", "", "\u0301accent first and e\u0301 combining"]


@pytest.fixture(scope="module")
def live_model(site):
    """The model and tokenizer the built page runs, read back from the page's own files (the ONNX file
    carries the weights by name): the reference answers are computed on the same weights."""
    from mlm_lessons import web

    meta = json.loads((BUNDLE / "meta.json").read_text(encoding="utf-8"))
    model = web.load_onnx_model(BUNDLE / "model.onnx")
    assert web.weights_digest(model) == meta["weights_sha256"]
    return model, mlm.MLMTokenizer.load(BUNDLE / "tokenizer.json")


def ask(tab, sentence: str, one_at_a_time: bool = False) -> dict:
    """Type ``sentence`` into the box, choose the mode, press the button; the lists shown (or the message)."""
    box = "#live-fill-mask"
    tab.fill(f"{box} input[type=text]", sentence)
    tab.check(f"{box} input[value={'one' if one_at_a_time else 'all'}]")
    tab.click(f"{box} button")
    tab.wait_for_function(f"() => ['answered', 'error'].includes(document.querySelector('{box}').dataset.state)", timeout=60000)
    return tab.evaluate(f"""() => {{
        const r = document.querySelector('{box}');
        return {{state: r.dataset.state, error: r.querySelector('.mlml-error').innerText,
                 invalid: r.querySelector('input[type=text]').getAttribute('aria-invalid'),
                 lists: Array.from(r.querySelectorAll('ol.mlml-top')).map(ol => Array.from(ol.querySelectorAll('li'))
                     .map(li => [li.dataset.token, +li.dataset.prob]))}};
    }}""")


def same_answers(page: list, python: list) -> bool:
    return len(page) == len(python) and all(
        [t for t, _ in a] == [t for t, _ in b] and all(abs(p - q) <= 1e-5 for (_, p), (_, q) in zip(a, b))
        for a, b in zip(page, python))


@pytest.mark.parametrize("page", LIVE_PAGES)
def test_live_box_is_there_and_loads_nothing_before_the_first_question(visits, page):
    v = visits(page)
    parts = v.tab.evaluate("""() => { const r = document.querySelector('#live-fill-mask');
        return r && {input: r.querySelector('input[type=text]').value, button: !!r.querySelector('button'),
                     modes: Array.from(r.querySelectorAll('input[type=radio]')).map(i => i.value), state: r.dataset.state}; }""")
    assert parts and "[MASK]" in parts["input"] and parts["button"] and parts["modes"] == ["all", "one"]
    assert parts["state"] == "ready", "the box's script did not start"
    fetched = [u for u in v.requests if "onnxruntime-web" in u or "/live-fill-mask/" in u]
    assert fetched == [], f"{page}: the runtime or the model was fetched before the reader asked: {fetched}"


def test_pages_without_the_box_load_none_of_it(visits):
    for page in PAGES:
        if page in LIVE_PAGES:
            continue
        v = visits(page)
        assert v.tab.locator("#live-fill-mask").count() == 0
        assert not [u for u in v.requests if "live-fill-mask" in u or "onnxruntime" in u], page


def test_live_box_answers_every_probe_as_fill_mask(browser, site, live_model):
    from mlm_lessons.model import fill_mask

    model, tok = live_model
    v = Visit(browser, site, "book/05_pretraining")
    try:
        for sentence in PROBES:
            shown = ask(v.tab, sentence)
            assert shown["state"] == "answered", (sentence, shown["error"])
            assert len(shown["lists"]) == 1 and len(shown["lists"][0]) == 5
            assert same_answers(shown["lists"], fill_mask(model, tok, sentence)), (sentence, shown["lists"])
        assert v.errors == [] and v.failed == [] and v.external == [], (v.errors, v.failed, v.external)
        loaded = {u.rsplit("/", 1)[-1] for u in v.requests if "onnxruntime-web" in u or "/live-fill-mask/" in u}
        assert loaded == {"ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm", "model.onnx", "tokenizer.json", "meta.json"}
    finally:
        v.close()


@pytest.mark.parametrize("one_at_a_time", [False, True], ids=["all-at-once", "one-at-a-time"])
def test_live_box_fills_several_masks_as_fill_mask(visits, live_model, one_at_a_time):
    from mlm_lessons.model import fill_mask

    model, tok = live_model
    tab = visits("book/intro").tab
    for sentence in TWO_MASKS:
        shown = ask(tab, sentence, one_at_a_time)
        assert shown["state"] == "answered", shown["error"]
        assert same_answers(shown["lists"], fill_mask(model, tok, sentence, one_at_a_time=one_at_a_time)), sentence
        headings = tab.evaluate("() => Array.from(document.querySelectorAll('#live-fill-mask .mlml-heading')).map(h => h.innerText)")
        assert len(headings) == sentence.count("[MASK]")
        assert all(("filled" in h) == one_at_a_time for h in headings), headings
        filled = tab.evaluate("() => Array.from(document.querySelectorAll('#live-fill-mask .mlml-filled mark')).map(m => m.dataset.token)")
        assert filled == [answers[0][0] for answers in shown["lists"]]


def test_live_tokenizer_cuts_text_as_mlm_tokenizer(visits, corpora, live_model):
    from mlm_lessons.scoring import sentences

    _, tok = live_model
    valid = sentences(corpora["python-docs"].texts("valid"))[:300]
    texts = PROBES + TWO_MASKS + TRICKY + valid
    assert len(valid) == 300
    tab = visits("book/intro").tab
    page = tab.evaluate("""async (texts) => {
        const spec = await (await fetch(mlmLive.paths.bundle + 'tokenizer.json')).json();
        const t = new mlmLive.Tokenizer(spec);
        return texts.map(x => [t.pieceList(x), t.encode(x)]);
    }""", texts)
    for text, (pieces, ids) in zip(texts, page):
        assert pieces == tok.tokenize(text), text
        assert ids == tok.encode(text), text


@pytest.mark.parametrize("sentence, message", [
    ("A sentence without a mask.", "Write [MASK] where the model should guess"),
    ("The [mask] is lower case.", "Write [MASK] in capital letters"),
    ("Return a [MASK] of " + "many words " * 40, "pieces long with [CLS] and [SEP]; the model reads at most"),
    ("A snowman ☃ and a [MASK].", "no piece for “☃” (U+2603)"),
    ("[CLS] Return a new [MASK].", "[CLS] is one of the model's special tokens"),
    ("A " + "x" * 120 + " word and a [MASK].", "longer than 100 characters"),
])
def test_live_box_explains_bad_input(visits, live_model, sentence, message):
    _, tok = live_model
    if "☃" in sentence:
        assert "[UNK]" in tok.tokenize(sentence)  # the vocabulary really lacks it
    tab = visits("book/intro").tab
    shown = ask(tab, sentence)
    assert shown["state"] == "error" and message in shown["error"], shown["error"]
    assert shown["invalid"] == "true" and not re.search(r"Error\b|\bat \S+:\d+", shown["error"])  # a sentence, no stack trace
    good = ask(tab, PROBES[0])  # the box goes on
    assert good["state"] == "answered" and good["invalid"] is None and good["error"] == ""


def test_live_attention_view_is_the_models(visits, live_model):
    model, tok = live_model
    tab = visits("book/intro").tab
    sentence = TWO_MASKS[0]
    assert ask(tab, sentence)["state"] == "answered"
    summary = tab.locator("#live-fill-mask details.mlml-attention summary")
    if not tab.evaluate("() => document.querySelector('#live-fill-mask details.mlml-attention').open"):
        summary.click()  # the view opens on request
    import torch

    ids = torch.tensor([tok.encode(sentence)])
    with torch.no_grad():
        _, maps = model.encoder(ids, torch.ones_like(ids), return_attention=True)
    for layer, head in ((0, 0), (model.config.n_layers - 1, model.config.n_heads - 1), (0, 1)):
        tab.select_option("#live-fill-mask select.mlml-layer", str(layer))
        tab.select_option("#live-fill-mask select.mlml-head", str(head))
        shown = tab.evaluate("() => document.querySelector('#live-fill-mask').mlmLive.attentionShown")
        assert (shown["layer"], shown["head"]) == (layer, head)
        assert np_max_abs(shown["weights"], maps[layer][0, head].tolist()) <= 1e-5
    assert tab.locator("#live-fill-mask canvas").bounding_box()["width"] > 100


def np_max_abs(a, b) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


@pytest.mark.parametrize("viewport", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_live_box_fits_the_screen(browser, site, viewport):
    v = Visit(browser, site, "book/05_pretraining", viewport)
    try:
        assert ask(v.tab, TWO_MASKS[0])["state"] == "answered"
        v.tab.locator("#live-fill-mask details summary").click()
        widths = v.tab.evaluate("""() => { const r = document.querySelector('#live-fill-mask');
            return {page: document.documentElement.scrollWidth, box: r.clientWidth, inner: r.scrollWidth,
                    canvas: r.querySelector('canvas').getBoundingClientRect().width}; }""")
        assert widths["page"] <= viewport[0] and widths["inner"] <= widths["box"] + 1, widths
        assert 0 < widths["canvas"] <= widths["box"], widths
        folder = os.environ.get("MLM_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            v.tab.locator("#live-fill-mask").screenshot(path=str(Path(folder) / f"live-fill-mask-{viewport[0]}x{viewport[1]}.png"))
        assert v.errors == [] and v.failed == [] and v.external == []
    finally:
        v.close()
