"""`make demo`: from a fresh clone to the served demo.

The gallery index, server and web page are not built yet (issues 4-6), so for now this
says what exists and what the demo will do once they land. It must never fail.
"""

from __future__ import annotations


def main() -> None:
    print("wordpix demo")
    print("  built:     caption readers, GloVe and Word2Vec word spaces, the image encoder")
    print("             (shipped in models/; try: .venv/bin/python -m scripts.evaluate --help)")
    print("  not built: gallery index, query server, web page")
    print("  When they land, `make demo` will index a default gallery and serve it on port 9998.")


if __name__ == "__main__":
    main()
