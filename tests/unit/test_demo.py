"""The demo's gallery choice: the default, a folder, and the errors a user can make."""

from __future__ import annotations

import pytest

from server.datasets import TUXPAINT_STAMPS
from server.samples import SAMPLE_PHOTOS, write_sample_gallery
from server.serve.demo import choose_gallery


def test_a_folder_gallery_is_scanned_with_its_captions(tmp_path):
    write_sample_gallery(tmp_path / "mine")
    name, root, found = choose_gallery(str(tmp_path / "mine"))
    sources = list(found)  # a folder is read as the indexer goes
    assert (name, root) == ("mine", (tmp_path / "mine").resolve())
    assert len(sources) == len(SAMPLE_PHOTOS)
    assert {s.caption for s in sources} == {caption for _, caption in SAMPLE_PHOTOS.values()}


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="is not a folder"):
        choose_gallery(str(tmp_path / "nowhere"))


@pytest.mark.skipif(not TUXPAINT_STAMPS.is_dir(), reason="Tux Paint stamps not installed "
                    "(`make test-packages` installs them)")
def test_the_default_gallery_is_the_tuxpaint_stamps():
    name, root, sources = choose_gallery("")
    assert name == "tuxpaint" and len(sources) > 700
    assert all(source.caption for source in sources)
    assert all(source.path.is_relative_to(root) for source in sources)
