"""What clients may take from the server: connections, time, and memory for their messages.

- `Clients` counts connections per client address and in all, and keeps each address's share
  of the server's time: a token bucket in seconds of work, so that a cheap ping and a query of
  32 misspelled words are charged what they cost. An address past its share is answered `busy`.
- `Clients` also counts each address's wrong access tokens: past a few, requests from it that
  carry a token wait before theirs is compared (`access_pause`), a pause that doubles with each
  further failure, so guessing is slow however many connections the guesser opens.
- `MemoryBudget` bounds the bytes of received messages held at once, all connections together:
  a frame is admitted when its header arrives (before its payload is read) and released once its
  message is answered; a connection whose frame does not fit waits, reading nothing meanwhile.

The numbers are the server's flags (`Limits`, docs/server.md).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MiB = 2**20
FREE_FAILURES = 5          # wrong tokens an address may send unslowed (typos, an old link)
FAILURE_PAUSE = 1.0        # seconds of the first pause; each further failure doubles it
FAILURE_PAUSE_MAX = 30.0
FAILURES_FORGOTTEN = 900.0  # seconds after its last wrong token, an address starts afresh


@dataclass(frozen=True)
class Limits:
    """The server's limits on what clients may take; every one is a flag of `python -m server`."""

    connections: int = 2048               # open connections, all clients together
    connections_per_address: int = 64     # open connections from one client address
    share: float = 0.1                    # seconds of work a second one address may use (0: off)
    burst: float = 1.0                    # seconds of work an address may use at once
    memory: int = 128 * MiB               # bytes of received messages held at once, in all
    memory_wait: float = 10.0             # seconds a connection may wait for memory, then closed
    upload_slots: int = 2                 # uploads decoded at once, in all
    upload_memory: int = 38 * MiB         # what decoding one upload may take (else refused)


DEFAULT_LIMITS = Limits()


@dataclass
class Client:
    """One client address: its open connections, its bucket of server time and its recent
    wrong access tokens."""

    connections: int = 0
    tokens: float = 0.0
    updated: float = field(default_factory=time.monotonic)
    failures: int = 0
    failed_at: float = 0.0
    paused_until: float = 0.0


@dataclass
class Ticket:
    """One connection's place in `Clients`; `refusal` says why it is over a cap, if it is."""

    address: str
    client: Client
    refusal: str | None = None
    left: bool = False


class Clients:
    """Connections and server time by client address."""

    FORGET_AFTER = 10_000  # addresses remembered before idle ones (no connection, full bucket) go

    def __init__(self, limits: Limits):
        self.limits = limits
        self.by_address: dict[str, Client] = {}
        self.connections = 0

    def join(self, address: str) -> Ticket:
        """Count a new connection; its ticket says if it is one too many, and why."""
        client = self.by_address.get(address)
        if client is None:
            if len(self.by_address) >= self.FORGET_AFTER:
                self._forget_idle()
            client = self.by_address[address] = Client(tokens=self.limits.burst)
        client.connections += 1
        self.connections += 1
        ticket = Ticket(address, client)
        if client.connections > self.limits.connections_per_address:
            ticket.refusal = (f"too many connections from {address} (at most "
                              f"{self.limits.connections_per_address}): close some and retry")
        elif self.connections > self.limits.connections:
            ticket.refusal = (f"the server has too many connections (at most "
                              f"{self.limits.connections}): retry later")
        return ticket

    def far_over(self, ticket: Ticket) -> bool:
        """So far over a cap that the connection is dropped without a word: telling each of
        thousands of excess connections why would itself be the flood."""
        return (ticket.client.connections > 2 * self.limits.connections_per_address or
                self.connections > 2 * self.limits.connections)

    def leave(self, ticket: Ticket) -> None:
        if not ticket.left:  # idempotent: a connection may end by more than one path
            ticket.left = True
            ticket.client.connections -= 1
            self.connections -= 1

    def wait(self, ticket: Ticket) -> float:
        """0 when the address may have work done now, else the seconds until it may."""
        if self.limits.share <= 0:
            return 0.0
        client = ticket.client
        now = time.monotonic()
        client.tokens = min(self.limits.burst,
                            client.tokens + (now - client.updated) * self.limits.share)
        client.updated = now
        return 0.0 if client.tokens >= 0 else -client.tokens / self.limits.share

    def light(self, ticket: Ticket) -> bool:
        """Whether the address has used less than half its burst lately (or there is no limit):
        its queries go before those of heavy users."""
        return self.limits.share <= 0 or ticket.client.tokens >= self.limits.burst / 2

    @staticmethod
    def charge(ticket: Ticket, seconds: float) -> None:
        """Take the work done for a message from its address's bucket (it may go below 0)."""
        ticket.client.tokens -= seconds

    @staticmethod
    def access_pause(ticket: Ticket) -> float:
        """Seconds a request of this address that carries a token waits before it is compared
        (0: none). It waits while connected, so the connection caps bound what waits."""
        return max(0.0, ticket.client.paused_until - time.monotonic())

    @staticmethod
    def access_refused(ticket: Ticket) -> None:
        """Count a wrong access token; past FREE_FAILURES the address pauses, longer each time."""
        client, now = ticket.client, time.monotonic()
        if now - client.failed_at > FAILURES_FORGOTTEN:
            client.failures = 0
        client.failures += 1
        client.failed_at = now
        beyond = client.failures - FREE_FAILURES
        if beyond > 0:
            doubled = FAILURE_PAUSE * 2 ** min(beyond - 1, 16)  # capped before it overflows
            client.paused_until = now + min(FAILURE_PAUSE_MAX, doubled)

    @staticmethod
    def access_granted(ticket: Ticket) -> None:
        ticket.client.failures = 0

    def _forget_idle(self) -> None:
        now = time.monotonic()
        self.by_address = {address: client for address, client in self.by_address.items()
                           if client.connections or client.tokens < self.limits.burst
                           or client.paused_until > now}


class MemoryBudget:
    """Bytes of received messages held at once, by owner (a connection).

    Large frames are served first come first served (a waiting one is never overtaken by a
    later large one) and may fill the budget but for a reserve kept for small ones: while
    uploads wait, queries (at most SMALL bytes) still pass.
    """

    SMALL = 64 * 2**10

    def __init__(self, limit: int):
        self.limit = limit
        self.reserve_for_small = min(limit // 8, 4 * MiB)
        self.used = 0
        self.peak = 0
        self.held: dict[object, int] = {}
        self.waiting: deque[tuple[object, int, Callable[[], object]]] = deque()

    def reserve(self, owner: object, size: int) -> bool:
        """Take `size` bytes for `owner` if they fit now and, for a large frame, if no other
        large one waits before it."""
        if (self.waiting and size > self.SMALL) or not self._fits(size):
            return False
        self._take(owner, size)
        return True

    def wait(self, owner: object, size: int, granted: Callable[[], object]) -> None:
        """Queue for `size` bytes; `granted` is called once they are taken for `owner`."""
        self.waiting.append((owner, size, granted))

    def release(self, owner: object, size: int) -> None:
        size = min(size, self.held.get(owner, 0))
        if size:
            self.held[owner] -= size
            self.used -= size
            if not self.held[owner]:
                del self.held[owner]
        self._grant()

    def release_all(self, owner: object) -> None:
        """Everything `owner` holds or waits for: it has gone."""
        self.waiting = deque(entry for entry in self.waiting if entry[0] is not owner)
        self.release(owner, self.held.get(owner, 0))

    def _fits(self, size: int) -> bool:
        # a frame larger than the whole budget still passes when nothing else is held
        room = self.limit if size <= self.SMALL else self.limit - self.reserve_for_small
        return self.used + size <= room or self.used == 0

    def _take(self, owner: object, size: int) -> None:
        self.held[owner] = self.held.get(owner, 0) + size
        self.used += size
        self.peak = max(self.peak, self.used)

    def _grant(self) -> None:
        while self.waiting and self._fits(self.waiting[0][1]):
            owner, size, granted = self.waiting.popleft()
            self._take(owner, size)
            granted()
