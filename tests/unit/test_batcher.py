"""Fair batching in process (server/serve/batcher.py), with a real retriever of a gallery of
words: which queries share a batch, and that each gets its own answer or error."""

from __future__ import annotations

import asyncio

from server.serve.batcher import BATCH_SHARE, MAX_BATCH, Batcher
from server.serve.limits import Clients, Limits
from server.serve.query import QueryError
from server.serve.retrieval import QueryRequest
from tests.unit.conftest import image_of, run_async


async def one_turn() -> None:
    """Let the event loop run what was scheduled: one batch is answered per turn."""
    await asyncio.sleep(0)


def test_queries_of_one_turn_are_answered_together_each_its_own(retriever):
    async def run() -> None:
        clients = Clients(Limits())
        batcher = Batcher(retriever, clients)
        words = ["dog", "cat", "boat"]
        futures = [batcher.answer(QueryRequest(word, k=1), clients.join(f"10.0.0.{n}"))
                   for n, word in enumerate(words)]
        await one_turn()
        assert all(future.done() for future in futures)
        for word, future in zip(words, futures, strict=True):
            answer, share = future.result()
            assert answer.hits[0].id == image_of(word) and share > 0

    run_async(run())


def test_one_address_gets_at_most_its_share_of_a_batch(retriever):
    async def run() -> None:
        clients = Clients(Limits())
        batcher = Batcher(retriever, clients)
        flood = clients.join("10.0.0.1")
        flooded = [batcher.answer(QueryRequest("dog", k=1), flood) for _ in range(10)]
        other = batcher.answer(QueryRequest("cat", k=1), clients.join("10.0.0.2"))
        await one_turn()
        assert other.done() and sum(f.done() for f in flooded) == BATCH_SHARE
        while not all(f.done() for f in flooded):
            await one_turn()
        assert len(batcher.pending) == 0

    run_async(run())


def test_a_light_address_never_waits_in_a_batch_with_a_heavy_one(retriever):
    async def run() -> None:
        clients = Clients(Limits(share=0.1, burst=1.0))
        batcher = Batcher(retriever, clients)
        heavy = clients.join("10.0.0.1")
        clients.charge(heavy, 0.9)  # most of its burst used: heavy
        heavy_queries = [batcher.answer(QueryRequest("dog", k=1), heavy) for _ in range(3)]
        light = batcher.answer(QueryRequest("cat", k=1), clients.join("10.0.0.2"))
        await one_turn()
        assert light.done() and not any(f.done() for f in heavy_queries)
        await one_turn()
        assert sum(f.done() for f in heavy_queries) == 1  # a heavy address: one a batch

    run_async(run())


def test_a_batch_is_at_most_max_batch(retriever):
    async def run() -> None:
        clients = Clients(Limits())
        batcher = Batcher(retriever, clients)
        futures = [batcher.answer(QueryRequest("dog", k=1), clients.join(f"10.0.{n // 250}."
                                                                         f"{n % 250}"))
                   for n in range(MAX_BATCH + 5)]
        await one_turn()
        assert sum(f.done() for f in futures) == MAX_BATCH
        await one_turn()
        assert all(f.done() for f in futures)

    run_async(run())


def test_a_bad_query_fails_alone(retriever):
    async def run() -> None:
        clients = Clients(Limits())
        batcher = Batcher(retriever, clients)
        ticket = clients.join("10.0.0.1")
        good = batcher.answer(QueryRequest("river", k=1), ticket)
        bad = batcher.answer(QueryRequest("[IMG_999]", k=1), ticket)
        await one_turn()
        assert good.result()[0].hits[0].id == image_of("river")
        assert isinstance(bad.exception(), QueryError)

    run_async(run())
