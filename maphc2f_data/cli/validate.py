"""``maphc2f validate DIR``: check a built dataset against its manifest.

Prints each problem on its own line and exits 1 when there are any;
prints ``ok: N rows in M shards`` and exits 0 otherwise. A DIR that is not a
built dataset at all is a usage error (exit 2).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

HELP = "Check a built dataset: manifest, hashes, row counts, every image and mask."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the validate options to ``parser``."""
    parser.add_argument("dir", metavar="DIR", help="dataset folder (holding manifest.json)")


def run(args: argparse.Namespace) -> int:
    """Validate ``args.dir``; returns 1 when problems were found."""
    import contextlib
    from pathlib import Path

    from maphc2f_data.dataset.config import MANIFEST_NAME
    from maphc2f_data.dataset.lock import dataset_lock
    from maphc2f_data.dataset.validate import count_rows, validate_dataset

    root = Path(args.dir)
    # A reader's lock: a build, splits or refine writing the folder is refused in one line rather
    # than read half-written (validate_dataset itself names a missing folder or manifest).
    lock = (dataset_lock(root, "maphc2f validate", shared=True) if (root / MANIFEST_NAME).is_file()
            else contextlib.nullcontext())
    with lock:
        problems = validate_dataset(root)
        counts = count_rows(root) if not problems else None
    if problems:
        for problem in problems:
            print(problem)
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {args.dir}", file=sys.stderr)
        return 1
    print(f"ok: {counts['rows']} rows in {counts['shards']} shards")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run as a stand-alone command (``python -m maphc2f_data.cli.validate``)."""
    from maphc2f_data.cli.main import run_subcommand

    return run_subcommand("validate", argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
