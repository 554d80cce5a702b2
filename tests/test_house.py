"""The house rules, checked on the source: layers, cycles, private names, module size, tooling.

Imports are read with :mod:`ast`, including those inside functions, so a cycle cannot hide in a
lazy import.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "oneclass"
MAX_LINES = 400

#: each module's layer; a module may import its own layer and the layers before it
LAYERS = [
    # pure functions on arrays and files, usable by every layer
    (
        "oneclass.config",
        "oneclass.outputs",
        "oneclass.registry",
        "oneclass.metrics",
        "oneclass.calibrate",
    ),
    ("oneclass.data", "oneclass.bundle", "oneclass.persist_arrays"),
    ("oneclass.embed",),
    ("oneclass.detect",),
    (
        "oneclass.persist",
        "oneclass.pipeline",
        "oneclass.pipeline_inputs",
        "oneclass.pipeline_maps",
        "oneclass.pipeline_saved",
        "oneclass.export",
    ),
    ("oneclass.engine",),
    ("oneclass.bench",),
    ("oneclass.report",),
    ("oneclass.cli",),
]


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (a module or module.attribute) lies in."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, int, list[str]]]:
    """(imported oneclass module, line, imported names) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name, known)
                if target:
                    out.append((target, node.lineno, []))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = resolve(f"{base}.{alias.name}", known) or resolve(base, known)
                if target:
                    names = [] if target == f"{base}.{alias.name}" else [alias.name]
                    out.append((target, node.lineno, names))
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        for target, _, _ in imports(path, known):
            if target != name and not name.startswith(target + "."):  # a package's own parents
                edges[name].add(target)
    return edges


def layer_of(name: str) -> int | None:
    for i, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    return None


def test_no_import_cycles():
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_dependencies_flow_one_way():
    wrong = []
    for name, targets in graph().items():
        mine = layer_of(name)
        for target in targets:
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                wrong.append(f"{name} imports {target} (a later layer)")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_private_names_across_modules():
    known = modules()
    wrong = []
    for name, path in known.items():
        for target, line, names in imports(path, known):
            if target == name:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {private} from {target}")
    assert not wrong, "\n".join(wrong)


def test_modules_stay_small():
    big = {
        str(p.relative_to(REPO)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def tool(name: str) -> list[str]:
    exe = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(exe).exists():
        pytest.skip(f"{name} is not installed (it is in the [test] extra)")
    return [exe]


def test_ruff_format_and_lint():
    for args in (["format", "--check"], ["check"]):
        res = subprocess.run(
            [*tool("ruff"), *args, "oneclass", "tests", "benchmarks"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert res.returncode == 0, f"ruff {' '.join(args)}:\n{res.stdout[-4000:]}{res.stderr}"


@pytest.mark.slow
def test_mypy_is_clean():
    res = subprocess.run([*tool("mypy"), "oneclass"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
