"""The shape of the house: every module imports, no import cycle, faces talk only to the app.

The import graph is read from the source with ``ast``. An edge is any import of an mmrag
module, at module level or inside a function (a lazy import is still a dependency: the
cycle this guards against was one), except imports under ``if TYPE_CHECKING:``, which
never run. ``from . import x`` is an edge to the submodule ``x``; the implicit import of
a package's ``__init__`` on the way to its children is not an edge.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import mmrag
from mmrag.errors import DependencyError

SRC = Path(mmrag.__file__).resolve().parent

#: Faces: the CLI, the HTTP server and the commands' library halves (eval, demo).
FACES = ("mmrag.cli", "mmrag.server", "mmrag.evaluate", "mmrag.demo")
#: What a face may import of mmrag besides other faces: the package, the app, and plain data.
FACE_MAY_USE = frozenset({"mmrag", "mmrag.app", "mmrag.config", "mmrag.errors", "mmrag.types"})


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _targets(node: ast.Import | ast.ImportFrom, package: str) -> set[str]:
    """The mmrag modules one import statement names."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    subs = {f"{module}.{alias.name}" for alias in node.names} & MODULES.keys()
    return subs if len(subs) == len(node.names) else {module, *subs}


def imports_of(name: str, *, type_checking: bool = False) -> set[str]:
    """The mmrag modules ``name`` imports (see the module doc for what counts)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt) and _is_type_checking(child) and not type_checking:
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.update(_targets(child, package))
            visit(child)

    visit(ast.parse(path.read_text("utf-8")))
    return {m for m in found if m in MODULES and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := dfs(start)):
            return cycle
    return None


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.endswith("__main__")))
def test_every_module_imports(name: str) -> None:
    try:
        importlib.import_module(name)
    except DependencyError as exc:  # an optional extra that is not installed here
        pytest.skip(str(exc))


def test_there_is_no_import_cycle_among_mmrag_modules() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def _is_face(name: str) -> bool:
    return any(name == face or name.startswith(face + ".") for face in FACES)


def test_faces_import_only_the_app_and_plain_data() -> None:
    faces = [name for name in MODULES if _is_face(name)]
    assert {"mmrag.server", "mmrag.cli.search_cmds", "mmrag.cli.eval_cmd"} <= set(faces)
    reaching = {
        face: sorted(m for m in imports_of(face, type_checking=True) if not _is_face(m))
        for face in faces
    }
    offending = {face: sorted(set(m) - FACE_MAY_USE) for face, m in reaching.items()}
    assert {face: m for face, m in offending.items() if m} == {}


#: Index attributes that are backends or internals: faces use Index's methods instead.
INTERNALS = frozenset({"store", "searcher", "blobs", "indexer", "manifest", "clip"})


def test_faces_do_not_reach_into_index_internals() -> None:
    reached = {
        f"{name}:{node.lineno} .{node.attr}"
        for name, path in MODULES.items()
        if _is_face(name)
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.Attribute) and node.attr in INTERNALS
    }
    assert reached == set()
