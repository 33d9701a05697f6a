"""The package's modules import one another in one direction: no import cycle, function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import medtransfer

ROOT = Path(medtransfer.__file__).parent


def module_name(path: Path) -> str:
    parts = ["medtransfer", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The medtransfer modules ``path`` imports anywhere in its code (not under ``if TYPE_CHECKING:``), each with
    the packages Python runs on the way to it, except the importer's own ancestors."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            parts = t.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in modules and not name.startswith(candidate + ".") and candidate != name:
                    found.add(candidate)
    return found


def test_no_import_cycles():
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {name: imports(path, set(paths)) for name, path in paths.items()}
    assert graph["medtransfer.run"]  # the walk sees imports

    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_package_cycles():
    """Folded into its first component under ``medtransfer`` (``medtransfer.study.store`` into ``study``), the
    package graph has no cycle either; the root ``medtransfer`` re-exports the API and nothing imports it."""
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}

    def unit(name: str) -> str:
        return ".".join(name.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        graph.setdefault(unit(name), set()).update(unit(t) for t in imports(path, set(paths)) if unit(t) != unit(name))
    assert "medtransfer" not in set().union(*graph.values()), "a module imports the package root"
    assert graph["medtransfer.run"]  # the walk sees imports

    done: set[str] = set()

    def reach(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            assert nxt not in trail, "package cycle: " + " -> ".join(trail[trail.index(nxt):] + [nxt])
            if nxt not in done:
                reach(nxt, trail + [nxt])
        done.add(node)

    for node in sorted(graph):
        reach(node, [node])


def test_no_module_level_getattr():
    """No lazy ``__getattr__`` holding a cycle together."""
    offenders = [module_name(p) for p in ROOT.rglob("*.py")
                 if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in ast.parse(p.read_text()).body)]
    assert not offenders
