"""``python -m mlm_lessons``: see :mod:`mlm_lessons.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
