"""The chapters under nbval train with other seeds than the stored outputs did.

nbval starts a notebook's kernel while it sets up the notebook's first cell; that kernel inherits
this process's environment. Here it gets ``MLM_LESSONS_SEED_OFFSET=1``: every model the chapter
trains (pretraining, DAPT, fine-tuning) is another run of the same recipe. So a cell marked
``# NBVAL_CHECK_OUTPUT`` can only pass if its output does not depend on one particular training run
– the rule for checked outputs – and the hidden claims about trained models are checked on a run
the stored outputs never saw.

The kernels also get ``MLM_LESSONS_CLAIMS=check``: a hidden claim that does not hold fails its
cell's test. (A reader's kernel, outside pytest, prints a note and goes on instead.)

A value already set by the caller wins: ``MLM_LESSONS_SEED_OFFSET=0 pytest book`` re-runs the
chapters with the stored outputs' own seeds.
"""

from __future__ import annotations

import os

import pytest

SEED_OFFSET_ENV = "MLM_LESSONS_SEED_OFFSET"  # mlm_lessons.training.SEED_OFFSET_ENV (not imported: no torch here)
#: The offset the notebooks' kernels train with under pytest (the stored outputs used 0).
CHECK_SEED_OFFSET = "1"
CLAIMS_ENV = "MLM_LESSONS_CLAIMS"  # mlm_lessons.teaching.claims.CLAIMS_ENV


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    before = {name: os.environ.get(name) for name in (SEED_OFFSET_ENV, CLAIMS_ENV)}
    os.environ.setdefault(SEED_OFFSET_ENV, CHECK_SEED_OFFSET)
    os.environ.setdefault(CLAIMS_ENV, "check")
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
