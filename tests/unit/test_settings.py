"""The settings tables of the server and the indexer: every option from them, with help, defaults
from one place."""

from __future__ import annotations

import ast

import pytest

from server.__main__ import limits_from, parse_args
from server.serve.indexer import IndexOptions
from server.serve.limits import DEFAULT_LIMITS
from server.serve.settings import (
    DATA_DIR,
    DEFAULT_PORT,
    INDEXER,
    INDEXES,
    SERVER,
    WEB_DIR,
    build_parser,
    default_index,
)
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


def test_the_indexer_has_a_table_too_with_the_library_defaults(tmp_path):
    assert all(setting.help for group in INDEXER for setting in group.settings)
    parser = build_parser(INDEXER, "python -m scripts.index", None)
    args = parser.parse_args([str(tmp_path / "Holiday"), "--ray"])
    defaults = IndexOptions()
    assert (args.batch_size, args.chunk_size, args.workers, args.dtype, args.rebuild,
            not args.quiet) == (defaults.batch_size, defaults.chunk_size, defaults.workers,
                                defaults.dtype, defaults.rebuild, defaults.progress)
    assert args.ray == "" and parser.parse_args([]).ray is None  # --ray alone: a local Ray
    with pytest.raises(SystemExit):
        parser.parse_args(["--batch-size", "0"])


def test_an_index_goes_where_the_server_looks_wherever_one_stands(tmp_path):
    assert default_index(tmp_path / "Holiday", None, None) == INDEXES / "Holiday"
    assert default_index(None, "flickr8k", "test") == INDEXES / "flickr8k-test"
    assert default_index(None, "tuxpaint", None) == INDEXES / "tuxpaint"
