"""The package's shape: imports go one way between the stages, with no cycle (function-level
imports included), and no module grows past 300 lines without saying why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reanalyzer"
MAX_LINES = 300

# Who may import whom. A package or top-level module may import itself, `errors`, the package
# root (its __version__) and what it lists here; nothing else of reanalyzer.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "core": set(),
    "read": {"core"},
    "send": {"core"},
    "record": {"core"},
    "settings": {"core"},
    "run": {"core", "read", "send", "record", "settings"},
    "commands": {"core", "read", "send", "record", "settings", "run", "simulator"},
    "cli": {"core", "settings", "run", "commands"},
    "__main__": {"cli"},
    "simulator": set(),  # a second, independent reading of the API: it shares no code
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every reanalyzer module this file imports, at any depth of its code. ``from pkg import
    name`` depends on the module pkg.name where there is one, else on pkg."""
    found: set[str] = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in modules else module)
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path, set(paths)) - {name} for name, path in paths.items()}


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_imports_go_one_way_between_the_stages() -> None:
    """Each stage imports only the stages below it (commands → run → read/send/record → core)."""
    wrong = []
    for module, targets in sorted(_graph().items()):
        area = _area(module)
        if area not in ALLOWED:
            continue  # the package root
        allowed = {area, "errors", ""} | ALLOWED[area]
        wrong += [f"{module} imports {t}" for t in sorted(targets) if _area(t) not in allowed]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_every_area_of_the_package_is_placed_in_the_layering() -> None:
    """A new package or top-level module is given its place in ALLOWED, not left unchecked."""
    areas = {_area(m) for m in _graph()} - {""}
    assert areas <= set(ALLOWED), f"not in the layering: {sorted(areas - set(ALLOWED))}"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_lazy_imports_included() -> None:
    """No module imports itself back through others, counting imports inside functions."""
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a three-module loop is found and named in order."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=_module_name)
def test_a_long_module_says_why(path: Path) -> None:
    """A module over 300 lines says in its docstring why its one concern needs more."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert "300 lines" in doc, (
        f"{_module_name(path)} has {lines} lines: split it, or say in its docstring why its "
        "one concern needs more than 300 lines")
