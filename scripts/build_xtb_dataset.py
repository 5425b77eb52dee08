#!/usr/bin/env python
"""``scripts/build_dataset.py --protocol xtb``: the GFN2-xTB build under its first name (older notes use it)."""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.argv[1:1] = ["--protocol", "xtb"]
    runpy.run_path(str(Path(__file__).with_name("build_dataset.py")), run_name="__main__")
