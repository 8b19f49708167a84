"""The structural rules of the code base (docs/architecture.md), checked on the source text.

* no module in ``sedflow_jax/`` over 400 lines, no function over 80 lines;
* no import of a private name (leading underscore) from another module, in the package or in benchmarks;
* no ``matplotlib.use`` in ``sedflow_jax/`` outside ``cli/``;
* no literal index into the flow's x outside the observation layer (``sedflow_jax/photometry.py``);
* no ``sys.path`` manipulation in benchmarks;
* flux <-> magnitude constants (22.5, ln 10 / 2.5) only in the observation layer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sedflow_jax"
BENCHMARKS = ROOT / "benchmarks"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _sources(*dirs: Path) -> list[Path]:
    return sorted(p for d in dirs for p in d.rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_module_length():
    long = {_rel(p): n for p in _sources(PACKAGE) if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_function_length():
    long = {}
    for p in _sources(PACKAGE):
        for node in ast.walk(_tree(p)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{_rel(p)}:{node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def _package_of(path: Path) -> str:
    """'sedflow_jax.<subpackage>' of a module of the package, 'benchmarks' for a benchmark script."""
    rel = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(rel[:2]) if rel[0] == "sedflow_jax" and len(rel) > 2 else rel[0]


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = list(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
    return ".".join(base + ([node.module] if node.module else []))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_imports(path: Path) -> list[str]:
    """Private names or private modules imported from another package (the benchmarks' own shared modules,
    ``benchmarks/_common.py`` and the like, are theirs to import)."""
    own = _package_of(path)
    out = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom):
            mod = _absolute(path, node)
            names = [mod + "." + a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for full in names:
            parts = full.split(".")
            local = own == "benchmarks" and (BENCHMARKS / f"{parts[0]}.py").exists()
            if local or not any(_is_private(q) for q in parts):
                continue
            target = ".".join(parts[:2]) if parts[0] == "sedflow_jax" else parts[0]
            if target != own:
                out.append(f"{_rel(path)}:{node.lineno} imports {full}")
    return out


def test_no_private_imports():
    bad = [s for p in _sources(PACKAGE, BENCHMARKS) for s in _private_imports(p)]
    assert not bad, "imports of private names across modules:\n" + "\n".join(bad)


def test_no_matplotlib_use_in_library():
    bad = [_rel(p) for p in _sources(PACKAGE) if "cli" not in p.relative_to(PACKAGE).parts
           and re.search(r"matplotlib\.use\(", p.read_text())]
    assert not bad, f"matplotlib.use outside cli/: {bad}"


#: x[..., :5], x[:, 5:10], x[:, 10], x[..., 10:], x[r, 10] ...: positional access to the flow's x
_X_INDEX = re.compile(r"\bx(?:_\w+)?\[[^\]]*(?:(?<![\d.])10\b|(?<!\d):5\b|\b5:10|(?<![\d.])10:)[^\]]*\]")


def test_no_literal_x_index_outside_observation_layer():
    bad = []
    for p in _sources(PACKAGE, BENCHMARKS):
        if p == PACKAGE / "photometry.py":
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if _X_INDEX.search(code):
                bad.append(f"{_rel(p)}:{i}: {line.strip()}")
    assert not bad, "literal x indices outside sedflow_jax/photometry.py:\n" + "\n".join(bad)


def test_no_sys_path_in_benchmarks():
    bad = [_rel(p) for p in _sources(BENCHMARKS) if "sys.path" in p.read_text()]
    assert not bad, f"sys.path manipulation in benchmarks: {bad}"


def _zero_point_literals(tree: ast.Module) -> list[int]:
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == 22.5]


def test_magnitude_constants_only_in_observation_layer():
    """The nanomaggie zero point 22.5 as a number, and ln 10 / 2.5 written out, only in photometry.py."""
    ln10 = re.compile(r"log\(10(?:\.0)?\)\s*/\s*2\.5|2\.5\s*/\s*(?:np|math|jnp)\.log\(10")
    bad = []
    for p in _sources(PACKAGE):
        if p == PACKAGE / "photometry.py":
            continue
        bad += [f"{_rel(p)}:{i}: 22.5" for i in _zero_point_literals(_tree(p))]
        bad += [f"{_rel(p)}:{i}: {line.strip()}" for i, line in enumerate(p.read_text().splitlines(), 1)
                if ln10.search(line.split("#", 1)[0])]
    assert not bad, "flux/magnitude constants outside sedflow_jax/photometry.py:\n" + "\n".join(bad)


def test_the_rules_can_fail(tmp_path):
    """The checks find what they look for (guards against a regex or AST walk that never matches)."""
    src = tmp_path / "m.py"
    src.write_text("from .infer import _check_key\ny = x[:, 10]\nm = 22.5 - 2.5 * f\n"
                   "def f():\n" + "    a = 1\n" * 90)
    assert _X_INDEX.search("y = x[:, 10]") and _X_INDEX.search("x[..., :5]") and not _X_INDEX.search("x[:, 1:5]")
    tree = ast.parse(src.read_text())
    bench = BENCHMARKS / "m.py"
    imp = ast.parse("from sedflow_jax.model.provabgs import _flux_const").body[0]
    assert _absolute(bench, imp) == "sedflow_jax.model.provabgs" and _package_of(bench) == "benchmarks"
    rel = ast.parse("from ..infer import _check_key").body[0]
    assert _absolute(PACKAGE / "anpe" / "importance.py", rel) == "sedflow_jax.infer"
    assert _package_of(PACKAGE / "anpe" / "importance.py") == "sedflow_jax.anpe"
    assert _zero_point_literals(tree) == [3]
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    assert fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES
