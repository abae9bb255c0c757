"""The layers of the code stay visible: the import contracts of ``pyproject.toml`` hold, every
module of ``explorer`` sits in a layer, and no two files import each other, even indirectly."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

import explorer

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("explorer", "predictors", "search_spaces")


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_explorer_module_is_in_a_layer():
    named = {name.strip() for layer in _contracts()["layers"]["layers"]
             for name in layer.replace("|", ":").split(":")}
    modules = {f"explorer.{info.name}" for info in pkgutil.iter_modules(explorer.__path__)}
    assert modules - named == set()


def test_no_import_cycles_between_files():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None, exclude_type_checking_imports=True)
    cycles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if importer < imported and graph.chain_exists(imported=importer, importer=imported)
    )
    assert cycles == [], "files in an import cycle: " + "; ".join(f"{a} <-> {b}" for a, b in cycles)
