"""The dependency direction is one way (issue 10; docs/architecture.md).

Every module of ``src/openlam`` is read with ``ast`` — imports inside functions count
too: a lazy import is still a dependency — and checked for (a) no cycle between
modules and (b) no import from a layer to a layer above it. ``LAYERS`` below is the one
list of the layers; docs/architecture.md explains it.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "openlam"

# Bottom to top. A module belongs to the layer of the longest prefix that names it
# (a module, or a package and everything in it); a layer imports only the layers below
# it and itself (without cycles). Where a module sits apart from its package, the
# comment says why.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # The package root (its __init__ only): __version__ and the public API, resolved by
    # name on first use (its imports under TYPE_CHECKING name those for type checkers).
    ("root", ("openlam",)),
    ("errors", ("openlam.errors",)),
    ("config", ("openlam.config",)),
    # Reading files and reporting what is wrong in them (stdlib, PyYAML, pydantic only):
    # the YAML loader with line numbers and pydantic errors in words.
    ("files", ("openlam.yamlfile", "openlam.validation")),
    # Pure functions over a goal's text (stdlib only): a goal's literals and shape key.
    # The offline planner (models) and a memory migration use them besides learning.
    ("text", ("openlam.learning.literals", "openlam.learning.gist")),
    # One SQLAlchemy engine per database URL: what every layer's tables are made on; and
    # the statements every run executes, compiled once for it.
    ("engines", ("openlam.memory.engines", "openlam.memory.prepared")),
    ("actions", ("openlam.actions",)),
    ("loop", ("openlam.loop",)),
    ("models", ("openlam.models",)),
    ("governance", ("openlam.governance",)),
    # The project database: runs, steps, questions (it stores the loop's types).
    ("memory", ("openlam.memory",)),
    ("learning", ("openlam.learning",)),
    # Adding an action source checks its grants against the org's catalog.
    ("org", ("openlam.org", "openlam.actions.adding")),
    ("runtime", ("openlam.runtime",)),
    ("workforce", ("openlam.workforce", "openlam.agent", "openlam.testing")),
    # The long-lived worker process and the triggers it polls submit goals through a
    # Workforce.
    ("worker", ("openlam.runtime.worker", "openlam.runtime.triggers")),
    # The evaluation harness drives whole Workforces over suites; the promotion gate
    # runs them for two model configurations.
    ("evals", ("openlam.learning.evals", "openlam.learning.gate")),
    ("server", ("openlam.server",)),
    ("cli", ("openlam.cli", "openlam.__main__")),
]

# Known exceptions, each with its reason: (importing module, imported module) -> why.
# None today; one added here must say why it cannot be fixed yet.
EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (the longest module name the import names)
    path: Path
    line: int
    type_checking: bool  # under ``if TYPE_CHECKING:`` only: never runs

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{self.line}"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for child in ast.walk(inner):
                    if isinstance(child, ast.Import | ast.ImportFrom):
                        lines.add(child.lineno)
    return lines


def imports(known: dict[str, Path]) -> list[Import]:
    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        checking = _type_checking_lines(tree)
        for node in ast.walk(tree):  # every import, at any depth
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                # ``from pkg import sub`` names the submodule when there is one
                names = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
                ]
            for name in names:
                if name != "openlam" and not name.startswith("openlam."):
                    continue
                target = resolve(name)
                if target is not None and target != module:
                    found.append(Import(module, target, path, node.lineno, node.lineno in checking))
    return found


def layer_of(module: str) -> int:
    best, level = -1, -1
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module.startswith(prefix + ".") and prefix != "openlam"  # root: itself
            if (module == prefix or inside) and len(prefix) > best:
                best, level = len(prefix), index
    assert level >= 0, f"{module} is in no layer: add it to LAYERS"
    return level


def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer_of(module)


def test_the_architecture_doc_lists_these_layers() -> None:
    doc = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1].strip() for line in doc.splitlines() if line.startswith("| ")]
    assert rows[1:] == [name for name, _prefixes in LAYERS]  # after the header row


def test_no_import_goes_up_a_layer() -> None:
    wrong = []
    for imp in imports(modules()):
        if imp.type_checking and imp.source == "openlam":
            continue  # the root's annotations of its lazily exported API (see LAYERS)
        if (imp.source, imp.target) in EXCEPTIONS:
            continue
        low, high = layer_of(imp.source), layer_of(imp.target)
        if high > low:
            wrong.append(
                f"{imp.where}: {imp.source} (layer {LAYERS[low][0]}) imports {imp.target} "
                f"(layer {LAYERS[high][0]}, above it)"
            )
    assert not wrong, "imports up the layers:\n" + "\n".join(wrong)


def test_no_import_cycle_between_modules() -> None:
    known = modules()
    graph: dict[str, dict[str, Import]] = {m: {} for m in known}
    for imp in imports(known):
        if not imp.type_checking and (imp.source, imp.target) not in EXCEPTIONS:
            graph[imp.source].setdefault(imp.target, imp)
    cycles = [_describe(cycle, graph) for cycle in _cycles(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_round(sorted(group), graph) for group in groups]


def _path_round(group: list[str], graph: dict[str, dict[str, Import]]) -> list[str]:
    """A shortest cycle from the group's first module back to itself."""
    members, start = set(group), group[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                return paths[node] + [start]
            if nxt in members and nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return group


def _describe(cycle: list[str], graph: dict[str, dict[str, Import]]) -> str:
    steps = [graph[a][b] for a, b in itertools.pairwise(cycle)]
    return "  " + " -> ".join(cycle) + "\n" + "\n".join(f"    {_named(s)}" for s in steps)


def _named(imp: Import) -> str:
    low, high = LAYERS[layer_of(imp.source)][0], LAYERS[layer_of(imp.target)][0]
    return f"{imp.where}: {imp.source} (layer {low}) imports {imp.target} (layer {high})"
