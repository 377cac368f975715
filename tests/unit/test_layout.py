"""The package's one-way rule: the core and `server.serve` never import `server.learn` or torch.

Statically here, over every module's imports; tests/e2e/test_no_torch.py checks it at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

TRAINING_ONLY = ("torch", "torchvision", "timm", "onnx", "server.learn")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def training_imports(path: Path) -> list[str]:
    return sorted(name for name in imported_modules(path)
                  if any(name == banned or name.startswith(banned + ".")
                         for banned in TRAINING_ONLY))


def test_serving_and_the_core_never_import_training_code():
    package = REPO / "server"
    checked = [p for p in package.rglob("*.py") if "learn" not in p.relative_to(package).parts]
    assert len(checked) > 15
    offenders = {str(p.relative_to(REPO)): training_imports(p) for p in checked}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_rule_checker_sees_an_offender(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("import os\ndef f():\n    from server.learn.export import export_onnx\n"
                      "    import torch.nn\n")
    assert training_imports(module) == ["server.learn.export", "torch.nn"]


def test_tests_never_import_the_scripts():
    for path in (REPO / "tests").rglob("*.py"):
        assert not [n for n in imported_modules(path) if n.split(".")[0] == "scripts"], path


def test_the_stress_suite_is_not_in_the_product():
    """The stress suite is test code: under tests/, never in the wheel or imported by it."""
    assert not (REPO / "server" / "serve" / "stress").exists()
    for path in (REPO / "server").rglob("*.py"):
        assert not [n for n in imported_modules(path) if n.split(".")[0] == "tests"], path


def _classes(paths: list[Path]) -> list[ast.ClassDef]:
    return [node for path in paths for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ClassDef)]


def _own_init(node: ast.ClassDef) -> ast.FunctionDef | None:
    return next((item for item in node.body
                 if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)


def _calls_super_init(init: ast.FunctionDef) -> bool:
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and
               node.func.attr == "__init__" and isinstance(node.func.value, ast.Call) and
               isinstance(node.func.value.func, ast.Name) and node.func.value.func.id == "super"
               for node in ast.walk(init))


def constructor_skippers(paths: list[Path]) -> list[str]:
    """Classes whose __init__ does not run that of a parent of ours which has one."""
    classes = _classes(paths)
    with_init = {node.name for node in classes if _own_init(node)}
    skippers = []
    for node in classes:
        init = _own_init(node)
        parents = [base.id for base in node.bases if isinstance(base, ast.Name)]
        if init and any(p in with_init for p in parents) and not _calls_super_init(init):
            skippers.append(node.name)
    return skippers


def test_no_subclass_skips_its_parents_constructor():
    assert constructor_skippers(list((REPO / "server").rglob("*.py"))) == []


def test_the_constructor_rule_sees_an_offender(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("class A:\n    def __init__(self):\n        self.x = 1\n"
                      "class B(A):\n    def __init__(self):\n        self.y = 2\n"
                      "class C(A):\n    def __init__(self):\n        super().__init__()\n")
    assert constructor_skippers([module]) == ["B"]
