"""The book's skeleton: table of contents, configuration, notebooks as stored, README and CI agree."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
NOTEBOOKS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
REPOSITORY = CONFIG["repository"]["url"]
MACHINE_PATH = re.compile(r"/(?:work|tmp|root|farm|home)/[\w.-]+")


def _toc_files() -> list[str]:
    files = [TOC["root"]]
    for entry in TOC.get("chapters", []):
        files.append(entry["file"])
        files.extend(s["file"] for s in entry.get("sections", []))
    return files


def _load(nb: Path) -> dict:
    return json.loads(nb.read_text(encoding="utf-8"))


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_toc_and_book_folder_agree():
    listed = _toc_files()
    for f in listed:
        assert (ROOT / f).with_suffix(".md").exists() or (ROOT / f).with_suffix(".ipynb").exists(), f
    on_disk = {str(p.relative_to(ROOT).with_suffix("")) for p in BOOK.glob("*") if p.suffix in (".md", ".ipynb")}
    assert on_disk == set(listed)
    assert NOTEBOOKS, "the book has chapters"
    chapters = [f for f in listed if Path(f).name[:2].isdigit()]
    assert chapters == sorted(chapters), "chapters are listed in order"


def test_config():
    assert CONFIG["execute"]["execute_notebooks"] == "off"
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY)
    assert {"dollarmath", "amsmath"} <= set(CONFIG["parse"]["myst_enable_extensions"])
    extensions = CONFIG["sphinx"]["local_extensions"]
    assert set(extensions) == {"footer_year", "masking_explorer", "page_scripts", "live_fill_mask"}
    assert all((ROOT / folder / f"{name}.py").is_file() for name, folder in extensions.items())
    # every script the pages load is served from the book itself (the browser tests prove no CDN is asked)
    sphinx = CONFIG["sphinx"]["config"]
    static = [ROOT / p for p in sphinx["html_static_path"]]
    for script in [sphinx["mathjax_path"], *sphinx["nb_ipywidgets_js"]]:
        assert "://" not in script and any((folder / script).is_file() for folder in static), script
    # the live fill-mask box's runtime, fetched on the first question: vendored, with its licence
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from live_fill_mask import ORT, ORT_FILES

    assert all((ORT / name).is_file() for name in (*ORT_FILES, "LICENSE", "package.json"))
    assert '"license": "MIT"' in (ORT / "package.json").read_text() and "Microsoft" in (ORT / "LICENSE").read_text()


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_from_the_configured_repository_only_in_colab(nb_path, monkeypatch):
    """In Colab the chapter needs the book's files as well as the package: the chapters read
    ``../data`` and ``../benchmarks/results`` from the book's folder. So the setup cell clones the
    configured repository (once), installs the package from the clone and moves into its ``book/``."""
    setup = _code_cells(_load(nb_path))[0]
    assert "hide-input" in setup["metadata"].get("tags", []), "folded on the HTML page: the chapter opens with its ideas"
    first = "".join(setup["source"])
    assert f'REPOSITORY = "{REPOSITORY}"' in first
    assert 'if "google.colab" in sys.modules:' in first
    import subprocess

    calls, moves = [], []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a[0]))
    monkeypatch.setattr(os, "chdir", moves.append)
    exec(compile(first, "setup-cell", "exec"), {})
    assert calls == [] and moves == [], "outside Colab the setup cell does nothing"
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    monkeypatch.setattr(os.path, "isdir", lambda path: False)  # a new Colab runtime
    exec(compile(first, "setup-cell", "exec"), {})
    clone, install = calls
    assert clone[:2] == ["git", "clone"] and REPOSITORY in clone
    checkout = clone[-1]
    assert install[1:5] == ["-m", "pip", "install", "-q"] and install[-1] == f"{checkout}[chapters]"
    assert moves == [f"{checkout}/book"]
    calls.clear()
    monkeypatch.setattr(os.path, "isdir", lambda path: path == checkout)  # the cell run again: no second clone
    exec(compile(first, "setup-cell", "exec"), {})
    assert [c[:2] for c in calls] == [[sys.executable, "-m"]]
    for name in ("data", "benchmarks/results"):  # what the chapters read relative to book/ is in the repository
        assert (ROOT / name).is_dir()


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_executed_and_clean(nb_path):
    nb = _load(nb_path)
    cells = _code_cells(nb)
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), "executed top to bottom in one run"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for c in cells:
        for out in c["outputs"]:
            assert out["output_type"] != "error", f"stored error: {out.get('ename')}"
            blob = json.dumps(out)
            assert not MACHINE_PATH.search(blob), f"a path of this machine: {MACHINE_PATH.search(blob).group(0)}"
            if out.get("name") == "stderr":
                assert "Warning" not in out["text"] and "warn" not in "".join(out["text"]).lower()
    hidden = [c for c in cells if "remove-cell" in c.get("metadata", {}).get("tags", [])]
    assert all(not c["outputs"] for c in hidden), "hidden cells check; they show nothing (a stray value is stored, never seen)"
    assert nb_path.stat().st_size < 3_000_000


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_kernel_runs_each_cell_as_written(nb_path):
    """IPython rewrites some cell sources before running them: it strips ``>>>`` prompts from pasted
    doctests (since IPython 9, even inside a string assigned to a name). A page that shows one
    source while the kernel runs another is wrong in a way no reader can see; only shell escapes
    (``!``) may be rewritten."""
    from IPython.core.inputtransformer2 import TransformerManager

    manager = TransformerManager()
    for cell in _code_cells(_load(nb_path)):
        source = "".join(cell["source"])
        if any(line.lstrip().startswith(("!", "%")) for line in source.splitlines()):
            continue
        assert manager.transform_cell(source).rstrip("\n") == source.rstrip("\n"), source[:200]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_structure(nb_path):
    nb = _load(nb_path)
    number = int(nb_path.name[:2])
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert markdown.startswith(f"# {number}. ")
    assert "You will learn to" in markdown and "(intro.md)" in markdown
    assert "## Summary" in markdown and "## Exercises" in markdown
    code = "\n".join("".join(c["source"]) for c in _code_cells(nb))
    assert re.search(r'mlm\.check\("0?%d-' % number, code), "exercises come with checkers"
    figures = sum("image/png" in o.get("data", {}) for c in _code_cells(nb) for o in c["outputs"])
    assert figures >= 1
    tags = [t for c in nb["cells"] for t in c.get("metadata", {}).get("tags", [])]
    assert "hide-cell" in tags, "solutions are hidden until toggled"
    checked = [c for c in _code_cells(nb) if "NBVAL_CHECK_OUTPUT" in "".join(c["source"])]
    assert checked, "some outputs are checked by nbval"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_cells_are_tagged(nb_path):
    """Every exercise has one ``attempt`` cell and one ``solution`` cell (hidden), which
    ``python -m mlm_lessons coursework student-edition`` relies on."""
    check_id = re.compile(r'mlm\.check\(\s*"([^"]+)"')
    cells = _code_cells(_load(nb_path))
    exercises = {e for c in cells for e in check_id.findall("".join(c["source"]))}
    assert exercises
    for role in ("solution", "attempt"):
        tagged = [c for c in cells if role in c.get("metadata", {}).get("tags", [])]
        for exercise in sorted(exercises):
            having = [c for c in tagged if exercise in check_id.findall("".join(c["source"]))]
            assert len(having) == 1, f"exercise {exercise}: {len(having)} cells tagged {role!r}, expected 1"
        assert all(check_id.search("".join(c["source"])) for c in tagged), f"a {role} cell without mlm.check"
        if role == "solution":
            assert all("hide-cell" in c["metadata"]["tags"] for c in tagged), "solutions are hidden"


def test_readme_commands_and_colab_links():
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt && jupyter-book build ." in readme
    assert re.search(r"^pytest$", readme, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    # CI is a new user's machine: its own virtual environment and home, an empty cache, then the
    # README's two commands exactly as written (and the book once more with warnings as errors)
    assert re.search(r"^pip install -r requirements\.txt && jupyter-book build \.$", ci, re.M)
    assert re.search(r"^pytest$", ci, re.M) and "jupyter-book build . -W -n --keep-going" in ci
    assert 'pip install --quiet "torch==2.13.0"' in ci.split("pip install -r requirements.txt")[0]
    setup = ci.split("pip install -r requirements.txt")[0]
    assert '-m venv "$fresh/venv"' in setup and 'source "$fresh/venv/bin/activate"' in setup
    assert 'export MLM_LESSONS_CACHE="$fresh/cache"' in setup and 'export HOME="$fresh/home"' in setup
    assert "MLM_LESSONS_SEED_OFFSET" in setup.split("unset", 1)[1].split("\n\n")[0], "the tests choose the seed offset"
    # the second set-up: the newest torch the requirements allow, its own environment, home and empty cache
    second = ci.split("README command 2 (pytest, empty cache)", 1)[1]
    assert '-m venv "$fresh/venv2"' in second and 'source "$fresh/venv2/bin/activate"' in second
    assert 'export HOME="$fresh/home2"' in second and 'export MLM_LESSONS_CACHE="$fresh/cache2"' in second
    assert re.search(r"^PIP_CONSTRAINT=/dev/null pip install --quiet -r requirements\.txt$", second, re.M)
    assert re.search(r"^pytest$", second, re.M) and "torch==" not in second
    slug = REPOSITORY.removeprefix("https://github.com/")
    links = re.findall(r"https://colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/main/(book/[\w.-]+\.ipynb)", readme)
    assert links and {s for s, _ in links} == {slug}
    assert {p for _, p in links} == {str(nb.relative_to(ROOT)) for nb in NOTEBOOKS}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level modules imported by the chapters' code cells and by the package, with where."""
    import ast

    found: dict[str, set[str]] = {}

    def visit(source: str, where: str) -> None:
        for node in ast.walk(ast.parse(source)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(where)

    for nb in NOTEBOOKS:
        for cell in _code_cells(_load(nb)):
            source = "\n".join(line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("!", "%")))
            visit(source, nb.name)
    for f in (ROOT / "mlm_lessons").rglob("*.py"):
        visit(f.read_text(encoding="utf-8"), str(f.relative_to(ROOT)))
    return {m: w for m, w in found.items() if m not in sys.stdlib_module_names and m not in ("mlm_lessons", "__future__")}


def test_the_colab_install_is_what_the_chapters_import():
    """The setup cell installs the package with its ``chapters`` extra: every library a chapter or the
    package imports, and nothing else – not the book builder, not the test or browser tools."""
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower() for r in
                 project["dependencies"] + project["optional-dependencies"]["chapters"]}
    distributions = {**{m: d[0].lower() for m, d in packages_distributions().items()},
                     "IPython": "ipywidgets"}  # IPython.display comes with ipywidgets (and every Jupyter kernel)
    optional = {"datasets": "hub"}  # only the optional Hub corpora (corpus/hub.py), for readers with a network
    imported = {distributions[m] for m in _third_party_imports() if m not in optional}
    assert imported == installed, (f"imported, not installed in Colab: {sorted(imported - installed)}; "
                                   f"installed, never imported: {sorted(installed - imported)}")
    assert not installed & {"jupyter-book", "pytest", "nbval", "playwright", "hypothesis", "pyyaml", "datasets"}
    assert all(f"{d}>=" in (ROOT / "requirements.txt").read_text() for d in optional)


@pytest.mark.parametrize("nb_path", [nb for nb in NOTEBOOKS if int(nb.name[:2]) >= 3], ids=lambda p: p.name)
def test_each_training_chapter_says_what_its_outputs_were_made_with(nb_path):
    """Right after its imports, each chapter from 3 on names the set-up its stored outputs come from
    (the record the chapter reads) and the corpora it reads."""
    from mlm_lessons.teaching.claims import MADE_WITH

    record = json.loads(MADE_WITH.read_text())[nb_path.stem]
    cells = _code_cells(_load(nb_path))
    source = "".join(cells[2]["source"])
    corpora = ", ".join(f'"{c}"' for c in record["corpora"])
    assert f'made_with("{nb_path.stem}", corpora=(' in source
    assert sorted(re.findall(r'"([a-z]+-docs)"', source)) == sorted(record["corpora"]), corpora
    text = "".join(o.get("text", "") if isinstance(o.get("text"), str) else "".join(o["text"]) for o in cells[2]["outputs"])
    assert text.startswith(f"This chapter's stored outputs were made with Python {record['python']}, torch {record['torch']}")
    assert "This run differs" not in text, "the stored outputs are the book's own set-up"


def test_requirements_cover_the_book():
    req = (ROOT / "requirements.txt").read_text()
    for pkg in ("torch>=2.4", "numpy", "matplotlib", "ipywidgets", "tokenizers", "tqdm",
                "jupyter-book>=1.0.4,<2", "nbval", "pytest", "hypothesis", "transformers", "-e ."):
        assert pkg in req, pkg


def test_footer_year_extension(monkeypatch):
    sys.path.insert(0, str(BOOK / "_ext"))
    try:
        import footer_year
    finally:
        sys.path.remove(str(BOOK / "_ext"))
    assert footer_year.build_year({"SOURCE_DATE_EPOCH": "0"}) == 1970
    assert footer_year.build_year({"SOURCE_DATE_EPOCH": "1735689600"}) == 2025
    assert footer_year.build_year({}) == time.localtime().tm_year
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH must be whole seconds"):
        footer_year.build_year({"SOURCE_DATE_EPOCH": "yesterday"})

    class App:
        handlers = []

        def connect(self, event, fn, priority=500):
            self.handlers.append((event, fn, priority))

    app = App()
    footer_year.setup(app)
    (event, fn, priority), = app.handlers
    config = type("Config", (), {"copyright": "the build year"})()
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    fn(app, config)
    assert event == "config-inited" and priority < 500 and config.copyright == str(time.localtime().tm_year)


def test_page_scripts_extension_keeps_one_copy_of_each_script():
    sys.path.insert(0, str(BOOK / "_ext"))
    try:
        import page_scripts
    finally:
        sys.path.remove(str(BOOK / "_ext"))

    class Script(str):
        def __new__(cls, filename, **attributes):
            s = super().__new__(cls, filename or "")
            s.filename, s.attributes = filename, attributes
            return s

    a, b = Script("a.js"), Script("b.js", defer="defer")
    inline, inline_again = Script(None, body="const X = 1"), Script("", body="const X = 1")
    other = Script(None, body="const Y = 2")
    scripts = [a, inline, b, Script("a.js"), inline_again, other, Script("b.js")]
    assert page_scripts.unique_scripts(scripts) == [a, inline, b, other, Script("b.js")]
    assert [s.attributes for s in page_scripts.unique_scripts(scripts)][-1] == {}  # b.js without defer differs


GUARD_NOTEBOOK = [
    """import mlm_lessons as mlm
from mlm_lessons.model import EncoderConfig
from mlm_lessons.training import TrainConfig, pretrain

words = "the tensor of a gradient returns new shape with same size input output".split()
tok = mlm.tokenizer_from_vocab(words + ["."])
texts = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(4 + i % 6)) + " ." for i in range(64)]
run = pretrain(EncoderConfig(vocab_size=tok.vocab_size, max_len=16, d_model=16, n_layers=1, n_heads=2, d_ff=32), tok, texts,
               texts[:16], TrainConfig(max_steps=4, batch_size=8, max_length=16, warmup_steps=1, eval_every=4,
                                       eval_sequences=16, device="cpu"), progress=False)""",
    "# NBVAL_CHECK_OUTPUT\nprint(f\"validation loss {run.history[-1]['valid_loss']:.6f}\")",
    "# NBVAL_CHECK_OUTPUT\nprint(run.model.num_parameters(), \"parameters\")",
]


@pytest.mark.slow
def test_the_guard_fails_a_checked_output_of_a_trained_model(tmp_path, monkeypatch):
    """The guard of the rule for ``# NBVAL_CHECK_OUTPUT``: ``book/conftest.py`` makes the kernels
    train with other seeds than the stored outputs did, so a checked float of a trained model fails,
    while a checked integer (the parameter count) still passes."""
    import shutil
    import subprocess

    import nbformat
    from nbclient import NotebookClient

    shutil.copy(BOOK / "conftest.py", tmp_path / "conftest.py")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in GUARD_NOTEBOOK])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    monkeypatch.delenv("MLM_LESSONS_SEED_OFFSET", raising=False)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    nbformat.write(nb, tmp_path / "guard.ipynb")

    def pytest_on_it(**env):
        proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax", "-q", "guard.ipynb"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, **env})
        return proc.returncode, proc.stdout[-3000:]

    code, out = pytest_on_it()
    assert code == 1 and "1 failed, 2 passed" in out and "guard.ipynb::Cell 1" in out, out
    code, out = pytest_on_it(MLM_LESSONS_SEED_OFFSET="0")  # the stored outputs' own seeds: all exact
    assert code == 0 and "3 passed" in out, out


def test_a_failing_claim_fails_under_pytest_and_is_a_note_for_a_reader(tmp_path, monkeypatch):
    """``book/conftest.py`` makes a hidden claim that does not hold fail its cell under pytest; the same
    notebook run as a reader runs it (``jupyter execute``, no pytest) prints a note and goes on."""
    import shutil
    import subprocess

    import nbformat
    from nbclient import NotebookClient

    shutil.copy(BOOK / "conftest.py", tmp_path / "conftest.py")
    cells = ["from mlm_lessons.teaching.claims import claim", "claim('the margin the text needs', 0.1, above=0.2)",
             "print('the chapter goes on')"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    monkeypatch.delenv("MLM_LESSONS_CLAIMS", raising=False)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = ["".join(o.get("text", "")) for cell in nb.cells for o in cell.outputs]
    assert any(o.startswith("Note: the text above rests on 'the margin the text needs' being above 0.2") for o in outputs), outputs
    assert outputs[-1] == "the chapter goes on\n"
    nbformat.write(nb, tmp_path / "claims.ipynb")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax", "-q", "claims.ipynb"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 1 and "1 failed, 2 passed" in proc.stdout and "does not hold: 0.1 is not above 0.2" in proc.stdout, proc.stdout[-3000:]


def test_the_guard_shifts_the_seeds_the_package_reads():
    import importlib.util

    spec = importlib.util.spec_from_file_location("book_conftest", BOOK / "conftest.py")
    book_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book_conftest)
    from mlm_lessons.training import SEED_OFFSET_ENV

    assert book_conftest.SEED_OFFSET_ENV == SEED_OFFSET_ENV and int(book_conftest.CHECK_SEED_OFFSET) > 0
