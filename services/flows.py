"""Once-only actions: a confirm button pressed twice (or a form posted twice) acts once.

The claim belongs in the transaction of the action it guards (`once` below): a press whose
work never committed — the process died, the work failed — leaves no claim behind, so the next
press tries again instead of finding the button used up. `not_done` stops a later press before
it does the work again."""
from peewee import IntegrityError

from models import AttemptCounter, db
from services import clock
from services.errors import DomainError


def claim_once(key: str) -> bool:
    """True the first time `key` is claimed, False ever after."""
    try:
        with db.atomic():
            AttemptCounter.create(key="once:" + key, count=1, window_start=clock.now())
    except IntegrityError:
        return False
    return True


def done(key: str) -> bool:
    """Whether the action `key` names was done (its claim committed with it)."""
    return AttemptCounter.select().where(AttemptCounter.key == "once:" + key).exists()


def once(key: str | None) -> None:
    """Inside the action's transaction: claim `key`, or raise DomainError("already_done")
    (409) when an earlier press of the same button already did the action. No key: no claim."""
    if key is not None and not claim_once(key):
        raise DomainError("already_done", status=409)


def not_done(key: str | None) -> None:
    """Before the action's work: raise DomainError("already_done") (409) when an earlier press
    of the same button already did it, so that a press after it stops before the work (a
    signature) rather than at its claim. Presses at the same moment both pass here: the claim
    in `once` decides between them."""
    if key is not None and done(key):
        raise DomainError("already_done", status=409)
