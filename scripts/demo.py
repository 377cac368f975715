"""`make demo`: index the default gallery with the shipped model and serve it on port 9998.

    make demo                         # Tux Paint's stamps (installed with apt where possible),
                                      # else scikit-image's sample photos
    make demo GALLERY=~/Pictures      # any folder of images (captions: a .txt beside an image)
    make demo GALLERY=flickr8k        # the Flickr8k test split, where ../shared has it
    make demo PORT=8080

Details: server/serve/demo.py.
"""

from __future__ import annotations

import argparse

from server.serve.demo import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gallery", default="", help="empty (default), flickr8k, or a folder")
    parser.add_argument("--port", type=int, default=9998)
    args = parser.parse_args()
    run_demo(args.gallery, args.port)


if __name__ == "__main__":
    main()
