"""Check the house rules over sedflow_jax/ (and benchmarks/ for private imports).

* no module over 400 lines, no function over 80 lines (``def`` to its last line, docstring included);
* no import of a private name (leading underscore) from another module.

Usage: ``python scripts/house_rules.py [ROOT]``; prints each offence, exit 1 if any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def offences(root: Path) -> list[str]:
    out = []
    for path in sorted((root / "sedflow_jax").rglob("*.py")):
        text = path.read_text()
        rel = path.relative_to(root)
        n = text.count("\n")
        if n > MAX_MODULE_LINES:
            out.append(f"{rel}: module has {n} lines (> {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    out.append(f"{rel}:{node.lineno}: function {node.name} has {length} lines (> {MAX_FUNCTION_LINES})")
    for path in sorted([*(root / "sedflow_jax").rglob("*.py"), *(root / "benchmarks").rglob("*.py")]):
        rel = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        out.append(f"{rel}:{node.lineno}: imports private name {alias.name} from {node.module}")
    return out


if __name__ == "__main__":
    found = offences(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
    print("\n".join(found) or "OK")
    sys.exit(1 if found else 0)
