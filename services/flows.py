"""Once-only actions: a confirm button pressed twice (or a form posted twice) acts once."""
from peewee import IntegrityError

from models import AttemptCounter, db
from services import clock


def claim_once(key: str) -> bool:
    """True the first time `key` is claimed, False ever after."""
    try:
        with db.atomic():
            AttemptCounter.create(key="once:" + key, count=1, window_start=clock.now())
    except IntegrityError:
        return False
    return True
