"""Small parts: every function in the package fits on a screen and every module does one thing at a readable
length. The limits are the house rule (60 lines, 400 lines); a test keeps them from creeping back."""

from __future__ import annotations

import ast
from pathlib import Path

import medtransfer

ROOT = Path(medtransfer.__file__).parent
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def test_no_long_module():
    long = {str(p.relative_to(ROOT)): n for p in modules() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_long_function():
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
