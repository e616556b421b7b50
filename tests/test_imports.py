"""The package's imports go one way: no module imports a module that imports it back.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a cycle hidden
in a function is still a cycle in the design. Only imports of the package's own modules count.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "apigen_local"

#: the package's parts, lowest first: a part may import its own layer and those below it, never above
#: ("__init__" is the package's own module)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "types", "jsonl"),
    ("model", "tool_specs"),
    ("tools",),
    ("sandbox", "generation"),
    ("checks",),
    ("run",),
    ("bfcl", "review"),
    ("bundle", "cli", "__init__"),
)


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of ``package`` and the package modules it imports anywhere in its source."""
    modules = {_module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                # "from pkg import sub" imports the module pkg.sub when there is one
                targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:  # "import a.b.c" of a name inside a module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_import(tmp_path: Path) -> None:
    package = tmp_path / "apigen_local"
    (package / "run").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "run" / "__init__.py").write_text("")
    (package / "run" / "a.py").write_text("from . import b\n")
    (package / "run" / "b.py").write_text("def f():\n    from ..run.a import x\n")
    (package / "run" / "c.py").write_text("from .a import y\n")
    graph = import_graph(package)
    assert graph["apigen_local.run.b"] == {"apigen_local.run.a"}
    assert cycles(graph) == [["apigen_local.run.a", "apigen_local.run.b"]]


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    graph = import_graph()
    assert "apigen_local.run.backends.ray" in graph["apigen_local.cli"]  # function imports count
    assert cycles(graph) == []


def test_ray_imports_the_base_and_the_base_imports_no_backend() -> None:
    graph = import_graph()
    assert "apigen_local.run.backends.base" in graph["apigen_local.run.backends.ray"]
    backends = {"apigen_local.run.backends.local", "apigen_local.run.backends.ray", "apigen_local.run.backends.memory"}
    for module in ("apigen_local.run.job", "apigen_local.run.backends.base", "apigen_local.run.worker"):
        assert not graph[module] & backends, module


def _part(module: str) -> str:
    """``apigen_local.run.job`` -> ``run``; the package's own ``__init__`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``importer -> imported`` for each import of a part in a higher layer than the importer's."""
    layer = {part: level for level, parts in enumerate(LAYERS) for part in parts}
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if layer[_part(target)] > layer[_part(module)]:
                found.append(f"{module} -> {target}")
    return found


def test_no_part_imports_one_above_it_and_run_never_imports_review() -> None:
    graph = import_graph()
    layered = {part for parts in LAYERS for part in parts}
    assert {_part(module) for module in graph} <= layered, "a new part of the package needs its place in LAYERS"
    assert upward_imports(graph) == []
    broken = {**graph, "apigen_local.run.job": graph["apigen_local.run.job"] | {"apigen_local.review.session"}}
    assert upward_imports(broken) == ["apigen_local.run.job -> apigen_local.review.session"]
