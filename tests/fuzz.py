"""make fuzz: the fuzz target of tests/test_fuzz.py, run long.

    python -m tests.fuzz                     # 200 examples per operation, seed 16
    python -m tests.fuzz --examples 1000 --seed 7 -k claims

It runs the same pytest test `make test` runs with a few examples, on a private stack the
root conftest.py starts (its own database, broker vhost and services), so a failure found
here replays under plain pytest with the same KEPU_FUZZ_EXAMPLES and KEPU_FUZZ_SEED.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200,
                        help="examples per operation (default 200)")
    parser.add_argument("--seed", type=int, default=16, help="generation seed (default 16)")
    parser.add_argument("-k", dest="select", default="",
                        help="only operations matching this pytest -k expression")
    parser.add_argument("--timeout", type=int, default=1800,
                        help="seconds one operation may take (default 1800)")
    args = parser.parse_args(argv)
    os.environ["KEPU_FUZZ_EXAMPLES"] = str(args.examples)
    os.environ["KEPU_FUZZ_SEED"] = str(args.seed)
    os.chdir(ROOT)
    options = ["tests/test_fuzz.py", "-q", f"--timeout={args.timeout}"]
    if args.select:
        options += ["-k", args.select]
    return int(pytest.main(options))


if __name__ == "__main__":
    sys.exit(main())
