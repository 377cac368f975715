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
