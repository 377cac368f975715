"""Everything that needs PyTorch: backbone, joint model, GloVe and Word2Vec, losses, metrics,
the feature cache, the training loop, evaluation and the ONNX export.

It may import the core and `server.serve`; nothing imports it (tests/unit/test_layout.py).
Installed with the `train` extra.
"""
