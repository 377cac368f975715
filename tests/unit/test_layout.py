"""The package's one-way rule: the core and `server.serve` never import `server.learn` or torch.

Statically here, over every module's imports; tests/e2e/test_no_torch.py checks it at run time.
"""

from __future__ import annotations

import ast
import re
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


# The query language is the server's alone (server/serve/query.py): the page asks it (`parse`)
# and builds query text from the terms it returns. Traces of a second parser in the page: the
# parser's own error messages, a copy of the stop words, a parse, tokenize or split function.
PARSER_MESSAGES = ("a term is missing", "too many terms", "at least one term to add",
                   "is not an image reference", "a weight goes before its term",
                   "has only common words", "has no words in it", "must be above 0 and at most")
STOP_WORD_MARKS = ("mightn", "mustn", "needn", "shan")  # words only a stop-word list holds
PARSER_FUNCTION = re.compile(r"\b(function\s+|const\s+|let\s+)(parse|tokeni[sz]e|split)\w*")


def query_parser_traces(script: str) -> list[str]:
    traces = [message for message in PARSER_MESSAGES if message in script]
    traces += [word for word in STOP_WORD_MARKS if re.search(rf"\b{word}\b", script)]
    return traces + [match.group(0) for match in PARSER_FUNCTION.finditer(script)]


def test_the_page_has_no_query_parser():
    parser = (REPO / "server" / "serve" / "query.py").read_text()
    assert all(message in parser for message in PARSER_MESSAGES)  # still the parser's words
    scripts = sorted((REPO / "web").glob("*.js"))
    assert len(scripts) >= 6  # the page in parts
    traces = {p.name: query_parser_traces(p.read_text()) for p in scripts}
    assert {name: found for name, found in traces.items() if found} == {}


def test_the_parser_checker_sees_a_parser():
    copy = """function parseQuery(text) {
      if (!pieces.length) return "a term is missing at the end";
      const STOP = new Set("a about mustn".split(" "));"""
    assert query_parser_traces(copy) == ["a term is missing", "mustn", "function parseQuery"]


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


# websockets' documented modules (https://websockets.readthedocs.io: API reference), the only
# ones imported; and names that are internals of its connection objects, never touched
WEBSOCKETS_PUBLIC = {"websockets.asyncio.client", "websockets.asyncio.server",
                     "websockets.sync.client", "websockets.sync.server", "websockets.server",
                     "websockets.protocol", "websockets.frames", "websockets.http11",
                     "websockets.datastructures", "websockets.exceptions", "websockets.typing"}
WEBSOCKETS_INTERNALS = {"reader", "parser", "parse", "parser_exc", "recv_messages",
                        "all_connections", "handler_tasks", "writes", "events", "current_size",
                        "send_frame", "recv_frame"}


def websockets_misuses(path: Path) -> list[str]:
    """Imports of websockets' undocumented modules or private names, subclasses of its
    classes, and uses of its connection objects' internals."""
    tree = ast.parse(path.read_text())
    imported = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] == "websockets":
            if node.module not in WEBSOCKETS_PUBLIC:
                found.append(f"import of {node.module}")
            found += [f"private {alias.name}" for alias in node.names
                      if alias.name.startswith("_")]
            imported |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found += [f"import of {a.name}" for a in node.names
                      if a.name.split(".")[0] == "websockets" and a.name not in WEBSOCKETS_PUBLIC]
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            found += [f"{node.name} subclasses {base.id}" for base in node.bases
                      if isinstance(base, ast.Name) and base.id in imported]
        elif isinstance(node, ast.Attribute) and node.attr in WEBSOCKETS_INTERNALS:
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_the_server_uses_only_websockets_public_api():
    modules = list((REPO / "server").rglob("*.py"))
    assert any("websockets" in imported_modules(p) or
               any(n.startswith("websockets.") for n in imported_modules(p)) for p in modules)
    offenders = {str(p.relative_to(REPO)): websockets_misuses(p) for p in modules}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_websockets_rule_sees_an_offender(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("from websockets.asyncio.server import Server, ServerConnection\n"
                      "from websockets.legacy.server import serve\n"
                      "class Door(ServerConnection):\n"
                      "    def reset(self):\n"
                      "        self.protocol.parser = self.protocol.parse()\n"
                      "        return self.protocol.reader.buffer, self.recv_messages.paused\n")
    assert websockets_misuses(module) == [
        "import of websockets.legacy.server", "Door subclasses ServerConnection",
        "line 5: .parser", "line 5: .parse", "line 6: .reader", "line 6: .recv_messages"]


def test_http_heads_are_parsed_by_h11_not_by_a_parser_of_our_own():
    modules = (REPO / "server").rglob("*.py")
    readers = sorted(p.name for p in modules if "h11" in imported_modules(p))
    assert readers == ["front.py"]
    front = (REPO / "server" / "serve" / "front.py").read_text()
    assert not re.search(r'split\(b" "\)|partition\(b":"\)', front)  # the old request-line code
