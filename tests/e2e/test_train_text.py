"""The training script end to end, as a user runs it, on a caption folder the test writes."""

import subprocess
import sys
from pathlib import Path

from gensim.models import KeyedVectors
from PIL import Image

from server.wordspace import WordSpace

ROOT = Path(__file__).resolve().parents[2]


def test_train_text_on_a_caption_folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    lines = []
    for k in range(6):
        Image.new("RGB", (8, 8), (40 * k, 0, 0)).save(photos / f"p{k}.jpg")
        lines.append(f"p{k}.jpg\t#dog runs on the #beach with a red ball {k}")
        lines.append(f"p{k}.jpg\tA cat sleeps on a sofa")
    (photos / "captions.tsv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "model" / "text.npz"
    for model, flags in (("glove", ["--iterations", "5"]), ("word2vec", ["--epochs", "2"])):
        result = subprocess.run(
            [sys.executable, "-m", "scripts.train_text", "--dataset", "folder", "--path",
             str(photos), "--model", model, "--out", str(out), "--min-count", "2", "--dim", "8",
             *flags],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )
        assert "12 captions" in result.stdout
        kv = KeyedVectors.load_word2vec_format(str(out.with_suffix(".txt")))
        assert set(kv.index_to_key) == {"dog", "runs", "beach", "red", "ball", "cat", "sleeps",
                                        "sofa"}
        assert WordSpace.load(out).dim == 8
