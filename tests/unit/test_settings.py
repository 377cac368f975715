"""The server's settings table: every option from it, with help, defaults from one place."""

from __future__ import annotations

import ast

import pytest

from server.__main__ import limits_from, parse_args
from server.serve.limits import DEFAULT_LIMITS
from server.serve.settings import DATA_DIR, DEFAULT_PORT, INDEXES, SERVER, WEB_DIR
from tests.conftest import REPO


def test_every_setting_has_its_help_and_is_on_the_command_line():
    flags = [setting.flag for group in SERVER for setting in group.settings]
    assert len(flags) == len(set(flags)) > 20
    assert all(setting.help for group in SERVER for setting in group.settings)
    args = parse_args([])
    assert all(hasattr(args, flag[2:].replace("-", "_")) for flag in flags)


def test_the_defaults_are_the_tables():
    args = parse_args([])
    assert args.port == DEFAULT_PORT and args.web == WEB_DIR and args.index is None
    assert limits_from(args) == DEFAULT_LIMITS
    assert parse_args(["--port", "1234", "--no-page-from-disk"]).port == 1234


def test_the_access_options_exclude_each_other():
    with pytest.raises(SystemExit):
        parse_args(["--token", "abc", "--no-auth"])


def test_paths_do_not_depend_on_where_one_stands():
    assert WEB_DIR.is_absolute() and (WEB_DIR / "index.html").is_file()
    assert DATA_DIR.is_absolute() and INDEXES == DATA_DIR / "index"


def test_the_port_is_written_in_one_place():
    """The number itself, as code: docstrings may show it in commands."""
    found = []
    for path in (REPO / "server").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value == DEFAULT_PORT:
                found.append(path.relative_to(REPO).as_posix())
    assert found == ["server/serve/settings.py"]
