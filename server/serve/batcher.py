"""Fair batching: queries that arrive in the same turn of the event loop are answered together."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from server.serve.limits import Clients, Ticket
from server.serve.retrieval import Answer, QueryRequest, Retriever

MAX_BATCH = 64
BATCH_SHARE = 4                # queries of one address in one batch: the others wait for less
HEAVY_SHARE = 1                # ... of an address that has used most of its share


class Batched(NamedTuple):
    request: QueryRequest
    ticket: Ticket  # the connection's: its address, and how much of its share is left
    future: asyncio.Future  # of (Answer, seconds of work this query's share of the batch took)


class Batcher:
    """Queries that arrive in the same turn of the event loop are answered together.

    With one client a query is answered at once (a batch of one); with many, the batch grows by
    itself, and one matrix product for the batch costs far less than one per query.

    Fairness: a batch takes the queries of light addresses (`Clients.light`) before any of
    heavy ones, and at most BATCH_SHARE queries of one address (HEAVY_SHARE of a heavy one). A
    client with many connections cannot fill every batch, and another's query waits at most for
    the small batch being answered, never in a batch with the heavy client's.
    """

    def __init__(self, retriever: Retriever, clients: Clients):
        self.retriever, self.clients = retriever, clients
        self.pending: list[Batched] = []

    def answer(self, request: QueryRequest, ticket: Ticket) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.append(Batched(request, ticket, future))
        return future

    def _flush(self) -> None:
        # at most MAX_BATCH at a time: the score matrix grows with the batch, and other
        # connections get the event loop back in between
        batch, self.pending = self._take()
        if self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        started = time.perf_counter()
        results: Sequence[Answer | Exception]
        try:
            results = self.retriever.answer_many([entry.request for entry in batch])
        except Exception as error:  # a bug must fail these queries, not hang them
            results = [error] * len(batch)
        share = (time.perf_counter() - started) / len(batch)
        for entry, result in zip(batch, results, strict=True):
            if entry.future.cancelled():
                continue
            if isinstance(result, Exception):
                entry.future.set_exception(result)
            else:
                entry.future.set_result((result, share))

    def _take(self) -> tuple[list[Batched], list[Batched]]:
        """(this batch, what waits for the next), each in order of arrival."""
        light = [entry for entry in self.pending if self.clients.light(entry.ticket)]
        candidates, share = (light, BATCH_SHARE) if light else (self.pending, HEAVY_SHARE)
        batch: list[Batched] = []
        taken: Counter[str] = Counter()
        for entry in candidates:
            if len(batch) < MAX_BATCH and taken[entry.ticket.address] < share:
                batch.append(entry)
                taken[entry.ticket.address] += 1
        chosen = {id(entry) for entry in batch}
        return batch, [entry for entry in self.pending if id(entry) not in chosen]
