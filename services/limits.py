"""Attempt limits: failures counted per key (a client address and what was tried) inside a
rolling window, for every secret a person types."""
from datetime import timedelta

from models import AttemptCounter, db
from services import clock

WINDOW = timedelta(hours=1)


def blocked(key: str, limit: int) -> bool:
    counter = AttemptCounter.get_or_none(AttemptCounter.key == key)
    return bool(counter and counter.window_start > clock.now() - WINDOW
                and counter.count >= limit)


def count_failure(key: str) -> None:
    with db.atomic():
        counter = AttemptCounter.get_or_none(AttemptCounter.key == key)
        if counter is None or counter.window_start <= clock.now() - WINDOW:
            AttemptCounter.delete().where(AttemptCounter.key == key).execute()
            AttemptCounter.create(key=key, count=1, window_start=clock.now())
        else:
            AttemptCounter.update(count=AttemptCounter.count + 1).where(
                AttemptCounter.id == counter.id).execute()
