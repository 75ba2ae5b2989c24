"""The chapters under nbval train with other seeds than the stored outputs did.

nbval starts a notebook's kernel while it sets up the notebook's first cell; that kernel inherits
this process's environment. Here it gets ``MLM_LESSONS_SEED_OFFSET=1``: every model the chapter
trains (pretraining, DAPT, fine-tuning) is another run of the same recipe. So a cell marked
``# NBVAL_CHECK_OUTPUT`` can only pass if its output does not depend on one particular training run
– the rule for checked outputs – and the hidden claims about trained models are checked on a run
the stored outputs never saw.

A value already set by the caller wins: ``MLM_LESSONS_SEED_OFFSET=0 pytest book`` re-runs the
chapters with the stored outputs' own seeds.
"""

from __future__ import annotations

import os

import pytest

SEED_OFFSET_ENV = "MLM_LESSONS_SEED_OFFSET"  # mlm_lessons.training.SEED_OFFSET_ENV (not imported: no torch here)
#: The offset the notebooks' kernels train with under pytest (the stored outputs used 0).
CHECK_SEED_OFFSET = "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    before = os.environ.get(SEED_OFFSET_ENV)
    os.environ.setdefault(SEED_OFFSET_ENV, CHECK_SEED_OFFSET)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SEED_OFFSET_ENV, None)
        else:
            os.environ[SEED_OFFSET_ENV] = before
