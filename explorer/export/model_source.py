"""The text of an exported ``model.py``: the definitions a family's network needs, in the sections
of :mod:`explorer.export.layout`, then the family's factory and the architecture's config.

Definitions are found by name among the model sources: the project modules that the export
families' factory modules import, directly or not. Project imports are followed and dropped,
and a section keeps the third-party imports its definitions use. That works because every
module on the way imports its project names with plain ``from`` imports and no two of them
define the same top-level name (``tests/test_export.py`` checks both), and it keeps an exported
file the same when definitions move between modules.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from string import Template
from types import ModuleType

from explorer.export.families import EXPORT_FAMILIES, export_family
from explorer.export.layout import FAMILY_SECTIONS, SECTIONS
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
    name = re.sub(r"[^0-9A-Za-z_]", "_", label)
    return name if name[:1].isalpha() else f"model_{name}"


def _in_docstring(text: str) -> str:
    """``text`` escaped for a triple-quoted docstring: quotes, backslashes and line breaks in a
    name or study name stay text and cannot close the string and add code."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _segments(module: ModuleType) -> dict[str, tuple[str, ast.stmt]]:
    """Name -> (source text with the comment lines just above it, node) of each definition."""
    source = inspect.getsource(module)
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body:
        names = _defined(ast.Module(body=[node], type_ignores=[]))
        if not names:
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())]) - 1
        while start and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        found[names[0]] = ("\n".join(lines[start:node.end_lineno]), node)
    return found


def _third_party_imports(module: ModuleType) -> dict[str, str]:
    """Name bound -> the third-party import statement of ``module`` that binds it."""
    source = inspect.getsource(module)
    bound = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not _project_import(node):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = ast.get_source_segment(source, node)
    return bound


@cache
def _definitions() -> dict[str, tuple[str, list[str]]]:
    """Name -> (source text, third-party imports it uses) of every definition of the model sources
    (parsed once per process: an export of many architectures reads the sources once)."""
    modules = dict.fromkeys(module for space in EXPORT_FAMILIES for module in model_sources(space))
    found: dict[str, tuple[str, list[str]]] = {}
    for module in modules:
        imports = _third_party_imports(module)
        for name, (text, node) in _segments(module).items():
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            found[name] = (text, [imports[n] for n in sorted(used) if n in imports])
    return found


def _section(title: str, definitions: dict[str, tuple[str, list[str]]]) -> tuple[list[str], str]:
    """(third-party imports, body) of one section of the layout."""
    imports, lines = [], []
    for line in SECTIONS[title].splitlines():
        if not line:
            lines.append("")
            continue
        if line not in definitions:
            raise ValueError(f"model.py section {title!r} names {line!r}, which no model source defines")
        text, used = definitions[line]
        lines.append(text)
        imports += used
    return list(dict.fromkeys(imports)), "\n".join(lines)


def standalone_model_source(config: ArchConfig, label: str) -> str:
    """The text of ``model.py``: the family's sections, then this config."""
    family = export_family(config.space)
    sections = FAMILY_SECTIONS[config.space]
    definitions = _definitions()
    imports, bodies = ["import json"], []
    for title in sections:
        section_imports, body = _section(title, definitions)
        imports += [line for line in section_imports if line not in imports]
        bodies.append(f"# -- {title} ".ljust(96, "-") + "\n\n" + body)
    imports.sort(key=lambda line: (not line.startswith("from __future__"), line.startswith("from "), line))
    taken = {name for title in sections for name in SECTIONS[title].split()}
    entry = model_name(label)
    entry = f"{entry}_model" if entry in taken else entry
    form = f", {config.form} form" if hasattr(config, "form") else ""
    header = (f'"""{_in_docstring(label)}: {family.title} network in plain PyTorch (architecture {config.arch_id}{form}).\n\n'
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
