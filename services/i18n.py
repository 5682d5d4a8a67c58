"""Translation outside a web request: messages sent to customers go out in their language."""
from functools import cache
from pathlib import Path

from babel.support import Translations

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
LANGUAGES = ("ko", "en")
DEFAULT_LANGUAGE = "ko"


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated later, in the reader's language."""
    return message


@cache
def _catalog(language: str) -> Translations:
    return Translations.load(str(TRANSLATIONS_DIR), [language])


def translate(language: str, message: str, **params) -> str:
    text = _catalog(language if language in LANGUAGES else DEFAULT_LANGUAGE).gettext(message)
    return text % params if params else text
