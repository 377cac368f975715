"""The server's accounts in process (server/serve/limits.py): connections by address, work by
address, wrong tokens, and the memory budget for received messages."""

from __future__ import annotations

import time

import pytest

from server.serve.limits import FREE_FAILURES, Clients, Limits, MemoryBudget, MiB


def test_an_address_over_its_cap_is_refused_and_others_are_not():
    clients = Clients(Limits(connections_per_address=2, connections=10))
    first, second, third = (clients.join("10.0.0.1") for _ in range(3))
    assert first.refusal is None and second.refusal is None
    assert third.refusal is not None and "too many connections from 10.0.0.1" in third.refusal
    assert clients.join("10.0.0.2").refusal is None
    clients.leave(third)
    clients.leave(third)  # a connection may end by more than one path: counted once
    assert clients.connections == 3 and clients.join("10.0.0.1").refusal is not None


def test_the_server_wide_cap_and_far_over_it():
    clients = Clients(Limits(connections_per_address=100, connections=2))
    tickets, far = [], []
    for n in range(5):  # far over is judged as a connection arrives
        tickets.append(clients.join(f"10.0.0.{n}"))
        far.append(clients.far_over(tickets[-1]))
    assert [t.refusal is None for t in tickets] == [True, True, False, False, False]
    assert "the server has too many connections" in str(tickets[2].refusal)
    assert far == [False, False, False, False, True]


def test_work_beyond_the_burst_makes_an_address_wait_its_share():
    clients = Clients(Limits(share=0.1, burst=1.0))
    ticket = clients.join("10.0.0.1")
    assert clients.wait(ticket) == 0 and clients.light(ticket)
    clients.charge(ticket, 1.5)  # half a second beyond the burst
    wait = clients.wait(ticket)
    assert wait == pytest.approx(5.0, abs=0.01)  # 0.5 s of work at 0.1 s a second
    assert not clients.light(ticket)
    other = clients.join("10.0.0.2")
    assert clients.wait(other) == 0 and clients.light(other)


def test_no_share_means_no_waiting():
    clients = Clients(Limits(share=0))
    ticket = clients.join("10.0.0.1")
    clients.charge(ticket, 100.0)
    assert clients.wait(ticket) == 0 and clients.light(ticket)


def test_wrong_tokens_past_the_free_ones_pause_the_address_longer_each_time():
    clients = Clients(Limits())
    ticket = clients.join("10.0.0.1")
    for _ in range(FREE_FAILURES):
        clients.access_refused(ticket)
    assert clients.access_pause(ticket) == 0
    clients.access_refused(ticket)
    first = clients.access_pause(ticket)
    clients.access_refused(ticket)
    assert 0.9 < first < clients.access_pause(ticket) <= 2.0
    clients.access_granted(ticket)
    ticket.client.paused_until = time.monotonic()
    clients.access_refused(ticket)
    assert clients.access_pause(ticket) == 0  # a right token starts it afresh


def test_the_budget_holds_what_fits_and_grants_waiters_in_order():
    budget = MemoryBudget(16 * MiB)
    reserve = budget.reserve_for_small
    first, second, third = object(), object(), object()
    assert budget.reserve(first, 16 * MiB - reserve)
    assert not budget.reserve(second, 2 * MiB)
    granted: list[str] = []
    budget.wait(second, 2 * MiB, lambda: granted.append("second"))
    assert not budget.reserve(third, 1 * MiB)  # a large frame never overtakes a waiting one
    assert budget.reserve(third, 1024)  # small messages still pass, from the reserve
    budget.release(first, 16 * MiB - reserve)
    assert granted == ["second"] and budget.held[second] == 2 * MiB
    budget.release_all(second)
    budget.release_all(third)
    assert budget.used == 0 and budget.held == {}
    assert budget.peak == 16 * MiB - reserve + 1024


def test_a_frame_larger_than_the_budget_passes_alone():
    budget = MemoryBudget(1 * MiB)
    owner = object()
    assert budget.reserve(owner, 4 * MiB)
    assert not budget.reserve(object(), 1024 * 1024)
    budget.release(owner, 4 * MiB)
    assert budget.used == 0


def test_one_gone_stops_waiting():
    budget = MemoryBudget(1 * MiB)
    holder, gone = object(), object()
    assert budget.reserve(holder, 1 * MiB - budget.reserve_for_small)
    granted: list[object] = []
    budget.wait(gone, 512 * 1024, lambda: granted.append(gone))
    budget.release_all(gone)
    budget.release_all(holder)
    assert granted == [] and budget.used == 0
