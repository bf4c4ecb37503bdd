"""The house rules of the code, checked: tiers import downwards only, no cycles, files and functions short."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "squeezenet"
# lowest first; a module may import its own tier and the tiers below it, never above
TIERS = ["base", "models", "formats", "data", "compression", "training", "deploy", "experiments", "cli", "api"]
BASE = {"errors", "paths", "atomic", "options", "plotting", "progress", "signals"}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def _tier(module: str) -> str:
    head = module.split(".")[0]
    if module in ("", "__main__"):
        return "api"
    return "base" if head in BASE else head


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported squeezenet module, line, at module level) for every import in the file, lazy ones too."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "squeezenet":
            mod = node.module[len("squeezenet."):] if node.module != "squeezenet" else ""
            for a in node.names:  # `from squeezenet.formats import sqz` imports the module formats.sqz
                sub = f"{mod}.{a.name}" if mod else a.name
                target = sub if (SRC / (sub.replace(".", "/") + ".py")).is_file() or (
                    SRC / sub.replace(".", "/")).is_dir() else mod
                out.append((target, node.lineno, id(node) in top))
        elif isinstance(node, ast.Import):
            out += [(a.name[len("squeezenet."):], node.lineno, id(node) in top) for a in node.names
                    if a.name.startswith("squeezenet.")]
    return out


def test_imports_point_down_the_tiers():
    upward = []
    for path in SRC.rglob("*.py"):
        here = _tier(_module(path))
        for target, line, _ in _imports(path):
            there = _tier(target)
            if TIERS.index(there) > TIERS.index(here):
                upward.append(f"{path.relative_to(SRC)}:{line} ({here}) imports {target} ({there})")
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = {_module(p): {t for t, _, top in _imports(p) if top} for p in SRC.rglob("*.py")}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in graph.get(m, ()):
            if t == m or t == "" or m.startswith(t + ".") or t.startswith(m + "."):
                continue  # a package and its own modules
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, m, t]))
            if t not in state:
                visit(t, [*stack, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_files_and_functions_are_short():
    long = []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > 300:
            long.append(f"{path.relative_to(SRC)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.relative_to(SRC)}:{node.name} {node.end_lineno - node.lineno + 1} lines")
    assert not long, "\n".join(long)
