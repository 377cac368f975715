"""Serving and indexing run without PyTorch: a fresh interpreter indexes a folder, loads the
server, embeds an upload and answers a query, and then holds no torch, torchvision or timm (nor
gensim or scipy, which would slow the start)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

SERVE_WITHOUT_TORCH = """
import asyncio, json, sys
from pathlib import Path
from server.artifacts import DEFAULT_MODEL_DIR, load_word_space
from server.serve.app import Session, load_app
from server.serve.encoder import ImageEncoder
from server.serve.indexer import IndexOptions, build_index, scan_folder
from server.serve.protocol import encode_reply

folder, index = Path(sys.argv[1]), Path(sys.argv[2])
report = build_index(scan_folder(folder), folder, index, ImageEncoder(), words=load_word_space(),
                     options=IndexOptions(progress=False))
app = load_app(DEFAULT_MODEL_DIR, index)

async def ask():
    session = Session(app.clients.join("127.0.0.1"), asyncio.get_running_loop().create_future())
    uploaded = await app.reply((folder / "cat.jpg").read_bytes(), session)
    answer = await app.reply(json.dumps({"type": "query", "q": "[UPLOAD_1]+grass", "k": 3}),
                             session)
    return uploaded, answer

uploaded, answer = (json.loads(encode_reply(reply)) for reply in asyncio.run(ask()))  # as sent
training = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "timm"))
# gensim too: its import alone (0.7 s) would double the server's start-up
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("gensim", "scipy"))
print(json.dumps({"indexed": report.total, "uploaded": uploaded, "answer": answer,
                  "training_modules": training, "heavy_modules": heavy}))
"""


def test_index_upload_and_query_load_no_torch(sample_gallery, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_TORCH, str(sample_gallery.folder),
         str(tmp_path / "index")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["indexed"] == len(list(sample_gallery.folder.glob("*.jpg")))
    assert report["uploaded"]["type"] == "uploaded"
    assert report["answer"]["type"] == "results" and len(report["answer"]["results"]) == 3
    assert report["training_modules"] == []
    assert report["heavy_modules"] == []
