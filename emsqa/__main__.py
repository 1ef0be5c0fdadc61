"""`python -m emsqa`: the same command line as the `emsqa` script."""

from __future__ import annotations

from emsqa.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
