"""Keeps the room's arrows honest: pki imports only the standard library and its allowed libraries."""

import ast
import sys
from pathlib import Path

PKI = Path(__file__).resolve().parents[2] / "pki"
ALLOWED = {"cryptography", "pyasn1", "pyasn1_alt_modules", "pkilint", "pkcs11"}


def _imported_roots(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def test_pki_imports_only_allowed_modules():
    modules = sorted(PKI.glob("*.py"))
    assert modules
    for path in modules:
        bad = {m for m in _imported_roots(path) if m not in ALLOWED and m not in sys.stdlib_module_names}
        assert not bad, f"{path.name} imports {bad}"


def test_every_module_has_a_docstring():
    for path in PKI.glob("*.py"):
        assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), path.name
