"""`python -m terminals_sim load|scenarios|demo|population ...` — see `cli.py`."""

import sys

from terminals_sim.cli import main

if __name__ == "__main__":  # not when a process pool re-imports the main module
    sys.exit(main())
