"""The relevance line: the score above which a result counts as a close match.

Chosen on Flickr8k's dev split by `python -m scripts.calibrate_relevance` for the model in
`models/` and kept beside it (relevance.json): for queries of one word, and of two or more
words added, the lowest cosine at which the results above it were relevant (their image's
captions hold the words) at least `precision` of the time. Cosine is comparable across
galleries, so the line says as much on a library as on dev: few results above it means few
photos show what was asked. Queries the calibration did not measure (a subtracted term, an
image term, a sentence, which the hubness correction re-scores) get no line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from server.serve.query import Term

log = logging.getLogger("wordpix.server")
RELEVANCE_FILE = "relevance.json"


@dataclass(frozen=True)
class RelevanceLines:
    word: float  # one word
    words: float  # two or more words, all added (in one phrase or several terms)
    precision: float  # what dev measured above each

    def line(self, terms: list[Term], sentence: bool) -> float | None:
        """The line for a query of `terms`, or None where none was calibrated."""
        if sentence or any(term.kind != "words" or term.sign < 0 for term in terms):
            return None
        count = sum(len(term.words) for term in terms)
        return self.word if count == 1 else self.words

    @classmethod
    def load(cls, model_dir: Path, fingerprint: str) -> RelevanceLines | None:
        """The lines calibrated for this model, or None (no file, or another model's)."""
        path = Path(model_dir) / RELEVANCE_FILE
        if not path.exists():
            return None
        saved = json.loads(path.read_text())
        if saved.get("model") != fingerprint:
            log.warning("%s was calibrated for another model: no relevance line (run `python "
                        "-m scripts.calibrate_relevance --write`)", path)
            return None
        return cls(saved["lines"]["word"], saved["lines"]["words"], saved["precision"])

    def save(self, model_dir: Path, fingerprint: str, measured: dict) -> None:
        (Path(model_dir) / RELEVANCE_FILE).write_text(json.dumps({
            "model": fingerprint, "split": "dev", "precision": self.precision,
            "lines": {"word": self.word, "words": self.words}, "measured": measured},
            indent=1) + "\n")
