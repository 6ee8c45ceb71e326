"""The shape of the code, checked: a thin command line, no private names across modules,
imports pointing inward (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "seldinger"
#: Largest share of the source the command line may take, and the longest command function.
APP_SHARE_MAX = 0.08
COMMAND_LINES_MAX = 80
#: What each package may import from seldinger (besides itself and the top-level modules
#: ``errors`` and ``files``); the order of docs/architecture.md.
ALLOWED = {
    "imaging": set(),
    "plan": {"imaging"},
    "io": {"imaging"},
    "data": {"imaging", "io"},
    "anatomy": {"imaging", "io"},
    "physics": {"imaging"},
    "planning": {"imaging", "anatomy", "physics", "plan"},
    "navigation": {"imaging", "plan", "io"},
    "pacs": {"imaging", "io"},
    "motion": {"imaging", "io", "plan", "anatomy", "physics", "planning", "navigation"},
    "robot": {"imaging", "io", "plan", "anatomy", "physics", "planning", "navigation", "motion"},
    "stents": {"imaging", "io", "plan", "anatomy"},
    "export": {"imaging", "io", "plan", "anatomy", "physics", "planning", "navigation",
               "motion", "robot", "stents"},
    "workflow": {"imaging", "io", "plan", "data", "anatomy", "physics", "planning", "navigation",
                 "motion", "pacs", "export", "robot", "stents"},
    "app": None,  # anything
}  # fmt: skip


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_command_line_is_thin() -> None:
    total = sum(_lines(p) for p in _modules())
    app = sum(_lines(p) for p in (SRC / "app").rglob("*.py"))
    assert app / total <= APP_SHARE_MAX, f"app/ is {100 * app / total:.1f} % of the source"
    long = []
    for path in (SRC / "app").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > COMMAND_LINES_MAX:
                    long.append(f"{path.name}:{node.name} ({length} lines)")
    assert long == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_imported_across_modules() -> None:
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = node.module or ""
            if node.level == 0 and not module.startswith("seldinger"):
                continue
            if any(_private(part) for part in module.split(".")) or any(
                _private(alias.name) for alias in node.names
            ):
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {module}")
    assert found == []


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_inward(package: str) -> None:
    allowed = ALLOWED[package]
    if allowed is None:
        return
    wrong = []
    for path in (SRC / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {  # imports for type annotations alone do not couple at run time
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] != "seldinger" or len(parts) < 2:
                    continue
                other = parts[1]
                if other in (package, "errors", "files") or other not in ALLOWED:
                    continue
                if other not in allowed:
                    wrong.append(f"{path.relative_to(SRC)} imports seldinger.{other}")
    assert wrong == []
