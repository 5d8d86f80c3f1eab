"""The domain core stays pure: no framework or database imports and no clock reads (`now` is passed in)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "portal" / "domain"
FORBIDDEN_ROOTS = {"flask", "flask_login", "flask_wtf", "flask_sqlalchemy", "flask_migrate", "sqlalchemy", "werkzeug", "redis", "stripe"}
FORBIDDEN_PORTAL = ("portal.models", "portal.extensions", "portal.services", "portal.clock")
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
CLOCK_OWNERS = {"datetime", "date", "time"}


def _modules() -> list[Path]:
    return sorted(DOMAIN.glob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_domain_module_imports_no_framework(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import inside portal
                base = "portal." + base if node.level == 2 else "portal.domain." + base
            names = [base]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_ROOTS, f"{path.name} imports {name}"
            assert not name.startswith(FORBIDDEN_PORTAL), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_domain_module_never_reads_the_clock(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr in CLOCK_CALLS and isinstance(owner, ast.Name) and owner.id in CLOCK_OWNERS:
                raise AssertionError(f"{path.name}:{node.lineno} reads the clock ({owner.id}.{node.func.attr}())")
