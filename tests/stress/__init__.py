"""Abuse the server on loopback and measure what it does (`python -m scripts.stress`).

- `common`: the server in its own process, clients from chosen loopback addresses, figures;
- `fuzz`: malformed and hostile messages, every reply checked;
- `load`: many connections, one address flooding, upload storms, queued large frames;
- `web`: HTTP downloads, a slow reader, pipelining, requests that must be refused;
- `killing`: kill -9 the indexer again and again;
- `decode`: the memory one upload takes to decode, by format;
- `suite`: each part against a fresh server, and the table.
"""
