"""The layering in docs/architecture.md: probes ← collector ← drift ← benchwatch, never upwards."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"probes", "collector", "drift", "benchwatch"}
ALLOWED = {
    "probes": set(),
    "collector": {"probes"},
    "drift": {"probes", "collector"},
    "benchwatch": {"probes", "collector", "drift"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    violations = []
    for f in files:
        bad = _imported_packages(f) - ALLOWED[package] - {package}
        if bad:
            violations.append(f"{f.relative_to(ROOT)} imports {sorted(bad)}")
    assert not violations, "layering broken:\n" + "\n".join(violations)


def test_every_package_is_typed() -> None:
    for package in ("probes", "collector", "drift"):
        assert (ROOT / package / "py.typed").exists(), f"{package}/py.typed missing"
