"""The layers read top-down: each package imports only those below it (README, Layout).

Read from the source with ast, so a lazy import inside a function counts as much as one at the top.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Lowest first; a package may import itself and those before it, never one after it.
# risk sits below trading: the trading loop asks risk.controller.validate_trading_request about every
# order before a broker sees it, and the risk checks are plain functions over plain data.
LAYERS = ("engine", "common", "accounts", "strategies", "sessions", "risk", "trading", "trademaster_web")


def imported_packages(package: str) -> dict[str, set[str]]:
    """The project packages that `package`'s modules import, by module path."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names & set(LAYERS)
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_only_the_layers_below_it(package):
    above = set(LAYERS[LAYERS.index(package) + 1:])
    wrong = {module: sorted(names & above) for module, names in imported_packages(package).items() if names & above}
    assert wrong == {}

