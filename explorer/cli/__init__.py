"""The ``explorer`` command: a thin argparse layer; every command calls one library function.

Each command group lives in its own module with a ``register(subparsers)`` function that adds
its parsers and sets ``handler`` (a function of the parsed args returning an exit code). Command
modules import nothing heavy at module level: options are declared when their command is used
(``explorer.cli.common.DeferredParser``) and handlers import what they run, so ``explorer --help``
and the light commands start without torch (``benchmarks/cli_startup.py``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rich.console import Console

from explorer.cli.common import DeferredParser, fail
from explorer.errors import UserError
from search_spaces.base import KnobError

COMMAND_MODULES = ("space", "measure", "remote", "predict", "proxy", "search")  # each group adds its module name here when it lands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="explorer",
        description="Hardware-aware design-space explorer for efficient vision backbones.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=DeferredParser)
    subparsers.required = True
    for module in COMMAND_MODULES:
        importlib.import_module(f"explorer.cli.{module}").register(subparsers)
    return parser


# Options whose value may start with "-" (argparse would read "--budget -5ms" as two options).
SIGNED_VALUE_OPTIONS = ("--budget",)


def _join_signed_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in SIGNED_VALUE_OPTIONS and arg.startswith("-"):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(_join_signed_values(sys.argv[1:] if argv is None else list(argv)))
        return int(args.handler(args) or 0)
    except (KnobError, UserError) as err:
        return fail(str(err))
    except BrokenPipeError:
        sys.stderr.close()  # output piped into e.g. `head`: not an error
        return 0
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; finished work is saved, re-run the command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
