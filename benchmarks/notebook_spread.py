"""How much the training chapters' results move between runs and set-ups, and how close each claim came to failing.

    python benchmarks/notebook_spread.py --variants 0:1 2:1 --jobs 2        # two 1-thread runs side by side
    python benchmarks/notebook_spread.py --variants 0:2 1:2 --append        # two 2-thread runs, one at a time
    /path/to/other-venv/bin/python benchmarks/notebook_spread.py --variants 0:2 --append   # another set-up

A set-up (an *environment*: Python, torch and the other libraries, the device) is the Python that
runs the script: run it once per virtual environment with ``--append`` into the same ``--out``, and
the report shows each claim on each set-up side by side. Variants are keyed by the environment's
label (``--env``, by default the Python and torch versions and the device) and ``SEED_OFFSET:THREADS``.

A variant is ``SEED_OFFSET:THREADS``: the chapters are executed top to bottom (with nbclient, in book
order, from an empty cache of their own) with ``MLM_LESSONS_SEED_OFFSET`` and the thread count set,
so every model is trained again – another seed, or the same seed on another number of threads,
which changes the floating-point sums and, over a training run, the result. The chapters' hidden
claims (``mlm_lessons.teaching.claims``) run in record mode: a failing claim is noted, not raised, so every
claim of every variant is seen. ``--jobs 2`` runs two variants at once (give each one thread then:
``0:1 2:1``), each in its own process; ``--append`` adds variants to an earlier ``--out``.

Writes every claim's value per variant to ``--out`` (JSON) and prints, per claim, its bound, the
values, their spread and the smallest margin to the bound: the numbers behind the tolerances the
chapters use. Cells that raised anyway (a plain ``assert``, an error) are listed per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TRAINING_CHAPTERS = ["03_masked_loss", "04_encoder", "05_pretraining", "06_masking_experiments",
                     "07_domain_adaptive_pretraining", "08_fine_tuning", "09_mlm_limits", "10_synthetic_language"]
MARK = "<<claims>>"
DUMP = f"import json as _j, mlm_lessons.teaching.claims as _c\nprint({MARK!r} + _j.dumps(_c.recorded()))"


def _variant(text: str) -> tuple[int, int]:
    try:
        offset, threads = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a variant is SEED_OFFSET:THREADS, e.g. 1:2; got {text!r}") from None
    if offset < 0 or threads < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the offset must be >= 0 and the threads >= 1")
    return offset, threads


def environment() -> dict:
    """This interpreter's set-up: the versions that decide the corpora and the arithmetic, and the device."""
    from importlib.metadata import version

    from mlm_lessons.teaching.claims import environment_record

    record = environment_record()
    for package in ("numpy", "tokenizers", "transformers", "scikit-learn"):
        record[package] = version(package)
    return record


def default_label(env: dict) -> str:
    return f"py{env['python']} torch {env['torch']} {env['device']}"


def run_variant(offset: int, threads: int, chapters: list[str], keep: Path | None, label: str | None = None,
                cache: Path | None = None) -> dict:
    """Execute ``chapters`` in order with a fresh cache (or ``cache``); the claims and errors of each."""
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix=f"spread-{offset}-{threads}-") as empty:
        # the kernels run this interpreter (its virtual environment's "python" first on the PATH)
        env = {**os.environ, "MLM_LESSONS_CACHE": str(cache or empty), "MLM_LESSONS_SEED_OFFSET": str(offset),
               "MLM_LESSONS_CLAIMS": "record", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
        out = {}
        for name in chapters:
            nb = nbformat.read(BOOK / f"{name}.ipynb", as_version=4)
            nb.cells.append(nbformat.v4.new_code_cell(DUMP))
            t0 = time.perf_counter()
            client = NotebookClient(nb, timeout=1800, kernel_name="python3", allow_errors=True,
                                    resources={"metadata": {"path": str(BOOK)}})
            client.execute(env=env)
            seconds = time.perf_counter() - t0
            errors, claims = [], []
            for i, cell in enumerate(nb.cells):
                for o in cell.get("outputs", []):
                    if o.get("output_type") == "error":
                        errors.append({"cell": i, "error": f"{o['ename']}: {o['evalue']}"[:300]})
                    elif o.get("output_type") == "stream" and MARK in o.get("text", ""):
                        claims = json.loads(o["text"].split(MARK, 1)[1])
            out[name] = {"seconds": round(seconds, 1), "errors": errors, "claims": claims}
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, keep / f"{name}-{offset}-{threads}.ipynb")
            (keep or Path(tempfile.gettempdir())).joinpath(f"spread-progress-{offset}-{threads}.json").write_text(
                json.dumps(out))  # what is done so far, should the run be stopped
            print(f"[{offset}:{threads}] {name}: {seconds:.0f} s, {len(claims)} claims, "
                  f"{sum(c['holds'] is False for c in claims)} failing, {len(errors)} errors", file=sys.stderr, flush=True)
    env = environment()
    return {"seed_offset": offset, "threads": threads, "environment": env, "label": label or default_label(env),
            "cache": "given" if cache else "empty", "chapters": out}


def report(results: dict) -> str:
    """A table per chapter: each claim's bound, its value per variant, spread and smallest margin."""
    names = list(results["variants"])
    lines = ["| variant | Python | torch | numpy | tokenizers | transformers | scikit-learn | device | corpora (sha256, first 8) | run cache | chapters' run time |",
             "|---|---|---|---|---|---|---|---|---|---|---:|"]
    for v in names:
        variant = results["variants"][v]
        env = variant.get("environment", {})
        corpora = ", ".join(f"{n} {sha[:8]}" for n, sha in env.get("corpora", {}).items())
        seconds = sum(ch["seconds"] for ch in variant["chapters"].values())
        lines.append(f"| {v} | {env.get('python', '–')} | {env.get('torch', '–')} | {env.get('numpy', '–')} | "
                     f"{env.get('tokenizers', '–')} | {env.get('transformers', '–')} | {env.get('scikit-learn', '–')} | "
                     f"{env.get('device', '–')} | {corpora or '–'} | {variant.get('cache', 'empty')} | {seconds:,.0f} s |")
    chapters = list(dict.fromkeys(ch for v in results["variants"].values() for ch in v["chapters"]))
    for chapter in chapters:
        seconds = ", ".join(f"{results['variants'][v]['chapters'].get(chapter, {}).get('seconds', '–')} s" for v in names)
        lines.append(f"\n## {chapter}  (run time per variant {', '.join(names)}: {seconds})")
        lines.append("| claim | bound | " + " | ".join(names) + " | spread | least margin |")
        lines.append("|---|---|" + "---:|" * (len(names) + 2))
        table: dict[str, dict] = {}
        for v in names:
            for c in results["variants"][v]["chapters"].get(chapter, {}).get("claims", []):
                entry = table.setdefault(c["name"], {"above": c["above"], "below": c["below"], "values": {}})
                entry["values"][v] = c["value"]
        for name, entry in table.items():
            values = list(entry["values"].values())
            bound = " and ".join(f"{w} {b:g}" for w, b in (("above", entry["above"]), ("below", entry["below"])) if b is not None) or "(noted)"
            margins = [m for m in ([x - entry["above"] for x in values] if entry["above"] is not None else [])
                       + ([entry["below"] - x for x in values] if entry["below"] is not None else [])]
            least = f"{min(margins):.4g}" + (" FAILS" if min(margins) <= 0 else "") if margins else "–"
            def shown(x):  # a value, marked where it misses the bound
                misses = (entry["above"] is not None and x <= entry["above"]) or (entry["below"] is not None and x >= entry["below"])
                return f"{x:.4g}" + (" ✗" if misses else "")

            cells = " | ".join(shown(entry["values"][v]) if v in entry["values"] else "–" for v in names)
            lines.append(f"| {name} | {bound} | {cells} | {max(values) - min(values):.3g} | {least} |")
        for v in names:
            for e in results["variants"][v]["chapters"].get(chapter, {}).get("errors", []):
                lines.append(f"- variant {v}, cell {e['cell']}: {e['error']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", type=_variant, default=[(0, 2), (1, 2), (0, 1), (2, 1)],
                        help="SEED_OFFSET:THREADS for each run of the chapters (default: 0:2 1:2 0:1 2:1)")
    parser.add_argument("--chapters", nargs="+", default=TRAINING_CHAPTERS, help="notebook names under book/, in order")
    parser.add_argument("--jobs", type=int, default=1, help="variants run at once (each in its own kernels)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "notebook_spread.json")
    parser.add_argument("--keep", type=Path, default=None, help="also write the executed notebooks here")
    parser.add_argument("--append", action="store_true",
                        help="add these variants to an existing --out (run 2-thread variants alone, 1-thread ones in pairs)")
    parser.add_argument("--report", action="store_true", help="only print the report of an existing --out")
    parser.add_argument("--cache", type=Path, default=None,
                        help="run with this run cache instead of an empty one (the models it holds are loaded, not trained)")
    parser.add_argument("--env", default=None,
                        help="a label for this set-up in the report (default: Python and torch versions and the device)")
    parser.add_argument("--one", type=_variant, help=argparse.SUPPRESS)  # a child process: one variant into --out
    args = parser.parse_args(argv)
    if args.report:
        print(report(json.loads(args.out.read_text())))
        return 0
    if args.one:
        args.out.write_text(json.dumps(run_variant(*args.one, args.chapters, args.keep, args.env, args.cache)))
        return 0
    for name in args.chapters:
        if not (BOOK / f"{name}.ipynb").is_file():
            parser.error(f"no notebook book/{name}.ipynb; choose from {', '.join(p.stem for p in sorted(BOOK.glob('[0-9]*.ipynb')))}")
    t0 = time.time()

    def child(variant):  # each variant in its own process, so that its kernels and event loop are its own
        with tempfile.TemporaryDirectory() as tmp:
            part = Path(tmp) / "variant.json"
            cmd = [sys.executable, __file__, "--one", "%d:%d" % variant, "--out", str(part), "--chapters", *args.chapters]
            cmd += (["--env", args.env] if args.env else []) + (["--cache", str(args.cache)] if args.cache else [])
            subprocess.run(cmd + (["--keep", str(args.keep)] if args.keep else []), check=True)
            return json.loads(part.read_text())

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = list(pool.map(child, args.variants))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    command = "python benchmarks/notebook_spread.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results = {"commands": [], "cpu": cpu, "cores": os.cpu_count(), "minutes": 0.0, "variants": {}}
    if args.append and args.out.is_file():
        results = json.loads(args.out.read_text())
    results["commands"].append(command)
    results["minutes"] = round(results["minutes"] + (time.time() - t0) / 60, 1)
    results["variants"].update({f"{d['label']} {d['seed_offset']}:{d['threads']}": {**d, "jobs": args.jobs} for d in done})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
