"""``maphc2f``: one entry point, one module per subcommand.

Each subcommand module under ``maphc2f_data.cli`` defines
``add_arguments(parser)`` and ``run(args) -> int``, plus a one-line ``HELP``.
Commands stay thin: parse, call the library, report.

A :class:`~maphc2f_data.errors.UserError` (bad input) becomes one line on
stderr and exit code 2; anything else keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from maphc2f_data import __version__
from maphc2f_data.errors import UserError

#: Subcommand name -> module under ``maphc2f_data.cli``.
COMMANDS = {
    "build": "build",
    "pipeline": "pipeline",
    "preview": "preview",
    "validate": "validate",
    "splits": "splits",
    "export": "export",
    "train": "train",
    "refine": "refine",
    "eval": "eval",
    "score": "score",
    "predict": "predict",
}

EXIT_USER_ERROR = 2


def _get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maphc2f",
        description="Build and inspect the MaPhC2F synthetic anomaly dataset.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"maphc2f_data.cli.{module_name}")
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def run_command(run, args: argparse.Namespace) -> int:
    """Call ``run(args)``, mapping bad input to one stderr line and exit 2."""
    try:
        return int(run(args) or 0)
    except UserError as exc:
        print(f"maphc2f: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("maphc2f: interrupted", file=sys.stderr)
        return 130


def run_subcommand(name: str, argv: Optional[List[str]] = None) -> int:
    """Run one subcommand as a stand-alone program
    (``python -m maphc2f_data.cli.<module>``); returns the exit code."""
    module = importlib.import_module(f"maphc2f_data.cli.{COMMANDS[name]}")
    parser = argparse.ArgumentParser(prog=f"maphc2f {name}", description=module.HELP)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    args._argv = list(argv) if argv is not None else sys.argv[1:]
    return run_command(module.run, args)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``maphc2f``; returns the exit code."""
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = _get_parser().parse_args(argv)
    args._argv = argv[argv.index(args.command) + 1:]  # the options as typed, for manifests
    return run_command(args._run, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
