"""Attempt limits for every secret a person types (DESIGN.md, security floor).

A try is counted *before* it is evaluated: `reserve` takes one try from every counter an attempt
is limited by, each with one conditional UPDATE, in one transaction, and refuses the attempt when
any counter is used up. So no number of parallel requests gets more evaluations than a limit
allows. A success gives its tries back (`Attempt.succeeded`); anything else leaves them counted.

Counters are kept per key — a client address, or a target: a customer, an RRN or account number
someone typed, a certificate's key, a transfer — in a window that starts with its first try.
"""
from dataclasses import dataclass
from datetime import timedelta

from peewee import Case, IntegrityError

from models import AttemptCounter, db
from services import clock, secrets
from services.errors import DomainError

CLIENT_TRIES, CLIENT_WINDOW = 20, timedelta(hours=1)     # per client address
TARGET_TRIES, TARGET_WINDOW = 5, timedelta(minutes=30)   # per target, from any number of addresses


@dataclass(frozen=True)
class Limit:
    key: str
    tries: int
    window: timedelta


def per_client(kind: str, client: str) -> Limit:
    return Limit(f"{kind}:client:{client}", CLIENT_TRIES, CLIENT_WINDOW)


def per_target(kind: str, target: str) -> Limit:
    """A target named by what a person typed is keyed by its HMAC: the counters never hold an
    RRN or account number in plain text."""
    return Limit(f"{kind}:{secrets.keyed_hash('limit', target)}", TARGET_TRIES, TARGET_WINDOW)


class LimitReached(Exception):
    """`limit` is used up until `until` (naive UTC)."""

    def __init__(self, limit: Limit, until):
        super().__init__(limit.key)
        self.limit = limit
        self.until = until


def _take(limit: Limit, now) -> bool:
    """One try from the counter, if it has one left (or its window is over)."""
    over = AttemptCounter.window_start <= now - limit.window
    take = (AttemptCounter.update(count=Case(None, [(over, 1)], AttemptCounter.count + 1),
                                  window_start=Case(None, [(over, now)], AttemptCounter.window_start))
            .where((AttemptCounter.key == limit.key) & (over | (AttemptCounter.count < limit.tries))))
    if take.execute():
        return True
    if AttemptCounter.select().where(AttemptCounter.key == limit.key).exists():
        # Used up, or (on PostgreSQL) made by a parallel request that committed after the
        # update's snapshot was taken: the update, run again, sees it and tells which.
        return bool(take.execute())
    try:
        with db.atomic():
            AttemptCounter.create(key=limit.key, count=1, window_start=now)
    except IntegrityError:          # a parallel request made the counter first: count there
        return _take(limit, now)
    return True


def blocked_until(limit: Limit):
    """When a used-up counter has tries again, or None when it has some now."""
    counter = AttemptCounter.get_or_none(AttemptCounter.key == limit.key)
    if counter is None or counter.count < limit.tries:
        return None
    until = counter.window_start + limit.window
    return until if until > clock.now() else None


class Attempt:
    """The tries an attempt took. Left alone, they stay counted: a failure."""

    def __init__(self, limits: list[Limit]):
        self.limits = limits

    def give_back(self, *limits: Limit) -> None:
        """These counters do not count this attempt after all (it was not evaluated, or its
        failure belongs to another target)."""
        keys = [limit.key for limit in limits or self.limits]
        AttemptCounter.update(count=AttemptCounter.count - 1).where(
            AttemptCounter.key.in_(keys) & (AttemptCounter.count > 0)).execute()

    def succeeded(self) -> None:
        self.give_back(*self.limits)


def reserve(*limits: Limit) -> Attempt:
    """Take a try from each limit at once, or from none: LimitReached names the first one used
    up. Call it before evaluating the secret."""
    now = clock.now()
    with db.atomic():
        for limit in limits:
            if not _take(limit, now):
                until = blocked_until(limit) or now + limit.window
                raise LimitReached(limit, until)
    return Attempt(list(limits))


def reserve_client_try(limit: Limit) -> Attempt:
    """`reserve` for an attempt limited by its client alone: used up, it is refused with
    client_blocked (429)."""
    try:
        return reserve(limit)
    except LimitReached:
        raise DomainError("client_blocked", status=429) from None


def reset(limit: Limit) -> None:
    """Forget the counter (a success that proves the target's owner, or an operator's unlock)."""
    AttemptCounter.delete().where(AttemptCounter.key == limit.key).execute()
