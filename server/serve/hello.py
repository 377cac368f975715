"""The hello: the first message on every connection, saying what the server serves."""

from __future__ import annotations

from server.serve.examples import offer
from server.serve.look import Fit, title
from server.serve.protocol import LIMITS, GalleryInfo, Hello, encode_reply
from server.serve.retrieval import Retriever

NO_INDEX = ("There is no gallery index yet. Build one, then start the server again: `make demo` "
            "(Tux Paint's stamps), or `python -m scripts.index ~/Pictures --index "
            "runs/index/pictures` for a folder of your own.")


def gallery_hello(retriever: Retriever, name: str, fit: Fit) -> str:
    """The hello of a gallery's server, as sent: its name, size, examples and the limits."""
    gallery = retriever.gallery
    offered = offer(retriever)
    return encode_reply(Hello(
        type="hello", gallery=GalleryInfo(name=name, title=title(gallery), count=len(gallery),
                                          fit=fit, taken=gallery.taken_range(),
                                          duplicates=gallery.appearance is not None,
                                          folders=gallery.folders or []),
        examples=offered.examples, gallery_examples=offered.words, limits=LIMITS))


def setup_hello() -> str:
    """The hello of a server with no index yet: how to build one."""
    return encode_reply(Hello(type="hello", gallery=None, setup=NO_INDEX, examples=[],
                              gallery_examples=[], limits=LIMITS))
