"""The quick parts of the stress suite (`python -m scripts.stress --quick`), as `make test` runs
them: each starts a real `python -m server` (or indexer) on loopback and must meet its targets.

The timing parts (flood, upload storm, queued frames) measure latency and memory on a shared
machine: they are figures for docs/reliability.md, not tests.
"""

from __future__ import annotations

import pytest

from tests.stress.suite import PART_RUNNERS, QUICK, Workspace


@pytest.fixture(scope="module")
def workspace(sample_gallery, tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("stress"), QUICK, gallery=sample_gallery.index)


@pytest.mark.parametrize("part", ["fuzz", "http", "connections", "kill", "decode"])
def test_stress_part_meets_its_targets(workspace, part):
    rows = PART_RUNNERS[part](workspace)
    assert rows
    failed = [f"{row.measure}: {row.value} (target {row.target})" for row in rows
              if row.met is False]
    assert not failed, failed
