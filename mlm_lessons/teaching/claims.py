"""The book's claims about trained models, checked with tolerances instead of exact outputs.

A sentence such as "the validation loss ends well below the unigram baseline" is backed in a
chapter by a hidden cell::

    claim("unigram − validation loss (nats)", unigram - final["valid_loss"], above=0.2)

Training differs from one CPU, thread count, seed or library version to the next, so a trained
model's numbers are never checked digit for digit (``# NBVAL_CHECK_OUTPUT``); a claim states the
margin it needs instead, and that margin is chosen from measured spreads
(``benchmarks/notebook_spread.py``). Every claim is recorded with its value and bounds, so the
measurement script can read back how far each run was from failing.

What a claim that does not hold does depends on who runs the chapter (``MLM_LESSONS_CLAIMS``):

- ``check`` – raise ``AssertionError``: the guard. Under pytest (the book's tests, an instructor's CI)
  this is the default, and ``book/conftest.py`` sets it for the notebooks' kernels.
- ``note`` – print a short note under the cell (what the text says, what this run measured, why a
  run can differ) and go on: a reader's "Run all" never stops at a hidden check. The default
  everywhere else.
- ``record`` – go on silently: a measurement run (``benchmarks/notebook_spread.py``) sees every claim
  of a chapter, failing ones included, and reads them back with :func:`recorded`.

Each training chapter opens with :func:`made_with`: what its stored outputs were made with, and one
line more where the reader's set-up differs.

A chapter that re-runs one run of a stored benchmark compares the two (:func:`agrees_with_stored`)
only where they can agree: seed offset 0, the same model (:func:`model_record`), the same corpora and
the same kind of device (:func:`environment_record`). Elsewhere it says in one line why it did not.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from pathlib import Path

from ..corpus import load_corpus

# PyTorch, and the modules that import it (seeding, engine), only where a function needs them:
# importing claims (``mlm.claim``) stays light.

__all__ = ["claim", "note", "recorded", "reset", "model_record", "same_model", "environment_record", "comparable",
           "agrees_with_stored", "corpora_differ", "made_with", "CLAIMS_ENV", "MODES", "MADE_WITH", "MADE_WITH_ENV"]

#: ``check`` (raise), ``note`` (print a note and go on) or ``record`` (go on silently).
CLAIMS_ENV = "MLM_LESSONS_CLAIMS"
MODES = ("check", "note", "record")

_RECORD: list[dict] = []

#: Why a reader's run can measure another number than the book's stored outputs.
WHY_RUNS_DIFFER = ("A run can differ from the book's: the corpora are built from the documentation installed with "
                   "this Python and PyTorch, and the device, the library versions and the seed change every trained number.")


def _mode() -> str:
    default = "check" if "pytest" in sys.modules else "note"  # in-process tests guard; a reader's kernel reads on
    mode = os.environ.get(CLAIMS_ENV, "").strip() or default
    if mode not in MODES:
        raise ValueError(f"{CLAIMS_ENV}={mode!r} must be 'check' (raise on a failing claim), 'note' (print a note and "
                         f"go on) or 'record' (go on silently)")
    return mode


def _bounds(above: float | None, below: float | None) -> str:
    return " and ".join(f"{word} {bound:g}" for word, bound in (("above", above), ("below", below)) if bound is not None)


def claim(name: str, value: float, *, above: float | None = None, below: float | None = None) -> None:
    """Check that ``value`` lies strictly above ``above`` and/or strictly below ``below``.

    When it does not, raises ``AssertionError`` naming the claim, the value and the bound it missed
    (``check``), prints that as a note and goes on (``note``), or goes on silently (``record``); see
    the module's docstring for which applies. Either way the claim is recorded with whether it held
    (:func:`recorded`). Like ``assert`` it returns nothing, so a notebook cell that ends with a claim
    that holds shows no output.
    """
    mode = _mode()
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a claim needs a name that says what is measured, got {name!r}")
    if above is None and below is None:
        raise ValueError(f"claim {name!r} needs a bound: above=..., below=... or both")
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise ValueError(f"claim {name!r}: the value must be a number, got {type(value).__name__}; "
                         f"turn a comparison into a margin (a - b, above=0)")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"claim {name!r}: the value is NaN; a claim needs a measured number")
    if above is not None and below is not None and not above < below:
        raise ValueError(f"claim {name!r}: above={above!r} must be smaller than below={below!r}")
    holds = (above is None or value > above) and (below is None or value < below)
    _RECORD.append({"name": name, "value": value, "above": above, "below": below, "holds": holds})
    if holds or mode == "record":
        return
    if mode == "check":
        raise AssertionError(f"claim {name!r} does not hold: {value:.4g} is not {_bounds(above, below)}")
    print(f"Note: the text above rests on '{name}' being {_bounds(above, below)}; this run measured {value:.4g}. "
          f"{WHY_RUNS_DIFFER} The chapter goes on.")


def note(name: str, value: float) -> None:
    """Record a measured number without a bound: one the prose calls noise, or only reports, whose
    spread over runs the measurement script should show."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a note needs a name that says what is measured, got {name!r}")
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise ValueError(f"note {name!r}: the value must be a number, got {type(value).__name__}")
    _RECORD.append({"name": name, "value": float(value), "above": None, "below": None, "holds": None})


def recorded() -> list[dict]:
    """Every claim checked so far in this process: name, value, bounds and whether it held."""
    return [dict(entry) for entry in _RECORD]


def reset() -> None:
    """Forget the recorded claims (a measurement run calls it between chapters)."""
    _RECORD.clear()


def model_record(config) -> dict:
    """What a stored benchmark records of the model it trained: ``config`` (an ``EncoderConfig``) as a
    dict, without the vocabulary's fingerprint (a tokenizer retrained on the same text has the same one,
    and the vocabulary size stays)."""
    if not hasattr(config, "to_dict"):
        raise ValueError(f"model_record takes a model configuration (EncoderConfig), got {type(config).__name__}")
    return {k: v for k, v in config.to_dict().items() if k != "vocab_fingerprint"}


def same_model(stored: dict, config) -> bool:
    """Whether the stored benchmark record ``stored`` was made with ``config``'s model (layout and
    sizes). A record that names no model is not comparable: it predates the record of models."""
    if not isinstance(stored, dict):
        raise ValueError(f"same_model takes a stored benchmark record (a dict), got {type(stored).__name__}")
    return stored.get("model") == model_record(config)


def environment_record(corpora=("python-docs", "pytorch-docs", "numpy-docs")) -> dict:
    """What a stored benchmark records of where it ran: the Python and torch versions, the kind of device
    the chapters train on here (``cuda``, ``mps`` or ``cpu``) and the fingerprint of each corpus it read.
    The corpora are built from the installed documentation, so another Python or torch can mean
    another text."""
    names = [corpora] if isinstance(corpora, str) else list(corpora)
    if not names:
        raise ValueError("environment_record needs the names of the corpora the benchmark read, e.g. ('python-docs',)")
    return {**_environment_without_corpora(), "corpora": {name: load_corpus(name).sha256()[:16] for name in names}}


def comparable(stored: dict, config) -> str | None:
    """``None`` when a run here can reproduce the stored benchmark's seed-0 run; otherwise the reason
    it cannot: another seed offset, another model, another corpus, another kind of device."""
    from ..seeding import seed_offset

    if seed_offset() != 0:
        return f"this run trains with seed offset {seed_offset()}, the stored runs with 0"
    if not same_model(stored, config):
        return "the stored runs trained another model"
    env = stored.get("environment")
    if not isinstance(env, dict) or "corpora" not in env:
        return "the stored record does not say which corpora and device it used"
    differ = corpora_differ(stored)
    if differ:
        return (f"{', '.join(differ)} here is another text than the stored runs read (built from the documentation "
                f"installed with this Python and PyTorch)")
    here = _environment_without_corpora()
    if here["device"] != env["device"]:
        return f"the stored runs trained on {env['device']}, this machine trains on {here['device']}"
    return None


def corpora_differ(stored: dict) -> list[str]:
    """The corpora a stored benchmark read (its ``environment`` record) that are another text here: built
    from other installed documentation. Empty when every one is the same text."""
    env = stored.get("environment") if isinstance(stored, dict) else None
    if not isinstance(env, dict) or "corpora" not in env:
        raise ValueError("the stored record does not say which corpora it read (no environment['corpora']); re-run its "
                         "benchmark script, which records them")
    here = environment_record(tuple(env["corpora"]))["corpora"]
    return [name for name, sha in env["corpora"].items() if here[name] != sha]


def agrees_with_stored(name: str, pairs: dict, *, tolerance: float, stored: dict, config) -> None:
    """Claim that each run here equals its stored twin: ``pairs`` maps a label to (value here, stored
    value), and each absolute difference must stay below ``tolerance`` (the arithmetic of another
    machine). Where the two cannot agree (:func:`comparable`), prints one line saying why and checks
    nothing."""
    if not pairs:
        raise ValueError(f"agrees_with_stored {name!r}: no (run here, stored) pairs to compare")
    reason = comparable(stored, config)
    if reason is not None:
        print(f"(Not compared with the stored benchmark: {reason}.)")
        return
    for label, (here, then) in pairs.items():
        claim(f"{name}, {label}: |run here − stored run|", abs(float(here) - float(then)), below=tolerance)


#: What each chapter's stored outputs were made with (written by :func:`made_with` with ``MLM_LESSONS_MADE_WITH=write``).
MADE_WITH = Path(__file__).parent / "made_with.json"
MADE_WITH_ENV = "MLM_LESSONS_MADE_WITH"


def _describe(env: dict) -> str:
    device = {"cpu": "a CPU", "cuda": "a CUDA GPU", "mps": "an Apple GPU (MPS)"}.get(env["device"], env["device"])
    corpora = ", ".join(f"{name} {sha[:8]}" for name, sha in env["corpora"].items())
    return f"Python {env['python']}, torch {env['torch']} on {device}" + (f"; corpora {corpora}" if corpora else "")


def made_with(chapter: str, corpora: tuple[str, ...] = ()) -> None:
    """Print what the chapter's stored outputs were made with (Python, torch, device, the fingerprint of
    each corpus it reads) and, where this run differs, one line saying how and what it means.

    With ``MLM_LESSONS_MADE_WITH=write`` (executing a chapter to store its outputs) it records this
    set-up as the chapter's instead."""
    if not isinstance(chapter, str) or not chapter.strip():
        raise ValueError(f"made_with needs the chapter's notebook name, e.g. '05_pretraining', got {chapter!r}")
    corpora = (corpora,) if isinstance(corpora, str) else tuple(corpora)
    stored = json.loads(MADE_WITH.read_text()) if MADE_WITH.is_file() else {}
    here = environment_record(corpora) if corpora else _environment_without_corpora()
    if os.environ.get(MADE_WITH_ENV, "").strip() == "write":
        stored[chapter] = here
        MADE_WITH.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    if chapter not in stored:
        raise ValueError(f"{MADE_WITH.name} has no record of what chapter {chapter!r} was made with; execute the chapter "
                         f"once with {MADE_WITH_ENV}=write")
    book = stored[chapter]
    if sorted(book["corpora"]) != sorted(corpora):
        raise ValueError(f"{chapter!r} was recorded reading the corpora {sorted(book['corpora'])}, not {sorted(corpora)}")
    print(f"This chapter's stored outputs were made with {_describe(book)}.")
    differ = [f"{key} {here[key]}" for key in ("python", "torch") if here[key] != book[key]]
    if here["device"] != book["device"]:
        differ.append(f"device {here['device']}")
    for name in corpora:
        if here["corpora"][name] != book["corpora"][name]:
            report = load_corpus(name).manifest_report()
            differ.append(f"another {name} ({report.counts() if report is not None else here['corpora'][name][:8]})")
    if differ:
        print(f"This run differs – {'; '.join(differ)} – so its trained numbers will not match the stored ones; where a "
              f"claim of the text does not hold here, a note says so.")


def _environment_without_corpora() -> dict:
    import torch

    from ..engine import pick_device

    return {"python": platform.python_version(), "torch": torch.__version__, "device": pick_device("auto").type,
            "corpora": {}}
