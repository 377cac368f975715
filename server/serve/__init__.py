"""Serving and indexing, with no PyTorch: the query language, spelling, retrieval, search, the
gallery index and its indexer, the ONNX image encoder and the WebSocket app.

It imports the core only (tests/unit/test_layout.py, tests/e2e/test_no_torch.py).
"""
