"""``explorer --help`` and the light commands start without torch; every command still declares
its options when used (``explorer.cli.common.DeferredParser``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from explorer.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("cli_startup", ROOT / "benchmarks" / "cli_startup.py")
cli_startup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli_startup)


@pytest.mark.parametrize("command", cli_startup.LIGHT_COMMANDS, ids=" ".join)
def test_light_commands_do_not_import_torch(command, shipped_db_env):
    heavy = cli_startup.imported_heavy_modules(command, shipped_db_env)
    assert "torch" not in heavy
    if command == ("--help",):
        assert heavy == []
    if command[0] == "space":  # the spaces are listed without opening a database
        assert {"sqlalchemy", "alembic"}.isdisjoint(heavy)


def test_every_command_declares_its_options_when_used():
    commands = build_parser()._subparsers._group_actions[0].choices
    for name, parser in commands.items():
        assert "usage: explorer " + name in parser.format_help()
    args = build_parser().parse_args(["measure", "--device", "local", "--backend", "torchscript", "--ssh", "pi@board"])
    assert (args.backend, args.ssh, args.handler.__name__) == ("torchscript", "pi@board", "_measure")


def test_deferred_options_still_reject_bad_values(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["devices", "add", "--name", "x", "--backend", "tflite"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err
