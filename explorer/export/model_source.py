"""The text of an exported ``model.py``: the sources a family's network needs, concatenated in
dependency order, then the family's factory and the architecture's config.

The sources are found from the import graph of the family's factory module: project imports
(``from search_spaces.x.y import ...``) are followed and dropped, third-party imports kept. That
works because every module on the way imports its project names with plain ``from`` imports and
no two of them define the same top-level name (``tests/test_export.py`` checks both).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from collections import Counter
from pathlib import Path
from string import Template
from types import ModuleType

from explorer.export.families import export_family
from search_spaces.base import ArchConfig

TEMPLATES = Path(__file__).with_name("templates")
PROJECT_PACKAGES = ("search_spaces", "explorer", "predictors")


def _project_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or node.module.split(".")[0] in PROJECT_PACKAGES
    return isinstance(node, ast.Import) and any(a.name.split(".")[0] in PROJECT_PACKAGES for a in node.names)


def _dependencies(module: ModuleType) -> list[ModuleType]:
    """The project modules ``module`` imports from, in import order."""
    found = []
    for node in ast.parse(inspect.getsource(module)).body:
        if not _project_import(node):
            continue
        if not isinstance(node, ast.ImportFrom) or node.level or any(a.asname for a in node.names):
            raise ValueError(f"{module.__name__} line {node.lineno}: model sources import project names with "
                             "absolute `from package.module import name` only (no `import x`, `as` or relative)")
        target = importlib.import_module(node.module)
        for alias in node.names:
            value = getattr(target, alias.name)
            found.append(value if isinstance(value, ModuleType) else target)
    return list(dict.fromkeys(found))


def model_sources(space: str) -> tuple[ModuleType, ...]:
    """Every module of the exported ``model.py`` of ``space``, each after the ones it imports."""
    order: list[ModuleType] = []
    visiting: list[ModuleType] = []

    def visit(module: ModuleType) -> None:
        if module in order:
            return
        if module in visiting:
            cycle = " -> ".join(m.__name__ for m in (*visiting[visiting.index(module):], module))
            raise ValueError(f"import cycle in the model sources: {cycle}")
        visiting.append(module)
        for dependency in _dependencies(module):
            visit(dependency)
        visiting.pop()
        order.append(module)

    visit(export_family(space).factory)
    return tuple(order)


def defined_names(module: ModuleType) -> list[str]:
    """Top-level names a module defines (functions, classes, assignments; not its imports)."""
    return _defined(ast.parse(inspect.getsource(module)))


def _defined(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


def model_name(label: str) -> str:
    """A Python identifier for the factory function: ``lowformer-b1.5`` -> ``lowformer_b1_5``."""
    name = re.sub(r"\W", "_", label)
    return name if name[:1].isalpha() else f"model_{name}"


def _split_source(module: ModuleType) -> tuple[list[str], str]:
    """(third-party import statements, body) of a module: its docstring and project imports dropped."""
    source = inspect.getsource(module)
    lines = source.splitlines()
    drop: set[int] = set()
    imports = []
    for index, node in enumerate(ast.parse(source).body):
        span = range(node.lineno - 1, node.end_lineno)
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            drop.update(span)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            drop.update(span)
            if not _project_import(node):
                imports.append(ast.get_source_segment(source, node))
    body = "\n".join(line for i, line in enumerate(lines) if i not in drop)
    return imports, body.strip("\n")


def standalone_model_source(config: ArchConfig, label: str) -> str:
    """The text of ``model.py``: the family's sources concatenated, then this config."""
    family = export_family(config.space)
    modules = model_sources(config.space)
    imports, bodies = ["import json"], []
    for module in modules:
        module_imports, body = _split_source(module)
        imports += [line for line in module_imports if line not in imports]
        bodies.append(f"# -- {module.__name__} ".ljust(96, "-") + "\n\n" + body)
    imports.sort(key=lambda line: (not line.startswith("from __future__"), line.startswith("from "), line))
    taken = {name for module in modules for name in defined_names(module)}
    entry = model_name(label)
    entry = f"{entry}_model" if entry in taken else entry
    form = f", {config.form} form" if hasattr(config, "form") else ""
    header = (f'"""{label}: {family.title} network in plain PyTorch (architecture {config.arch_id}{form}).\n\n'
              "Generated from the sources of the design space it was searched in; needs only torch.\n"
              '"""\n\n' + "\n".join(imports))
    keys = family.stages(config.to_dict()).module_name()
    tail = Template((TEMPLATES / "model_tail.py.tmpl").read_text()).substitute(
        model_name=entry, arch_id=config.arch_id, builder=family.builder.__name__,
        feature_keys=f"``{keys[0]}`` .. ``{keys[-1]}``",
        config_json=json.dumps(config.to_dict(), indent=2, sort_keys=True))
    text = header + "\n\n\n" + "\n\n\n".join(bodies) + "\n" + tail
    twice = sorted(name for name, n in Counter(_defined(ast.parse(text))).items() if n > 1)
    if twice:
        raise ValueError(f"model.py of {label!r} would define {', '.join(twice)} more than once")
    return text
