"""The portal's languages: English (the templates' own words) and Spanish (a hand-written catalog).

The Spanish catalog is ``portal/locale/es/LC_MESSAGES/messages.po``, compiled in memory when
first needed (``read_po`` → ``write_mo`` into a buffer → ``babel.support.Translations``), so no
binary ``.mo`` file is kept in the repository next to the text it was made from. Templates use
Jinja2's i18n extension (newstyle gettext: ``{% trans %}`` and ``_()`` escape their variables);
each language has its own Jinja2 environment, so a page renders entirely in one language.

A page's language is the one chosen with the switch (kept in the session), else the browser's
``Accept-Language``, else English. Dates and numbers are formatted by Babel in that language.
"""

from __future__ import annotations

import functools
import gettext as gettext_module
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "LOCALE_DIR", "TEMPLATE_DIR", "catalog_path", "environment",
           "format_day", "format_number", "format_timestamp", "format_wall_clock", "language_from_header",
           "translations"]

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"
_HERE = Path(__file__).resolve().parent
LOCALE_DIR = _HERE / "locale"
TEMPLATE_DIR = _HERE / "templates"
_DOMAIN = "messages"


def catalog_path(language: str) -> Path:
    """The hand-written ``.po`` of ``language``."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{_DOMAIN}.po"


@functools.cache
def translations(language: str) -> gettext_module.NullTranslations:
    """The compiled catalog of ``language``; English is the templates' own text (no catalog)."""
    if language == DEFAULT_LANGUAGE:
        return gettext_module.NullTranslations()
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    with catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=_DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=_DOMAIN)


def environment(language: str, loader: jinja2.BaseLoader | None = None) -> jinja2.Environment:
    """A Jinja2 environment whose gettext is ``language``'s catalog (autoescaped, newstyle)."""
    env = jinja2.Environment(loader=loader or jinja2.FileSystemLoader(TEMPLATE_DIR),
                             autoescape=jinja2.select_autoescape(["html"]), extensions=["jinja2.ext.i18n"],
                             undefined=jinja2.StrictUndefined)
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]  # added by the i18n extension
    return env


def language_from_header(accept_language: str | None) -> str:
    """The best of ``LANGUAGES`` for an ``Accept-Language`` header (q-values honoured), else English."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    preferred = [tag for _, _, tag in sorted(weighted)]
    try:
        chosen = Locale.negotiate(preferred, list(LANGUAGES), sep="-")
    except (UnknownLocaleError, ValueError):
        return DEFAULT_LANGUAGE
    return chosen.language if chosen is not None and chosen.language in LANGUAGES else DEFAULT_LANGUAGE


def format_number(value: float | int, language: str, *, digits: int = 0) -> str:
    """``value`` with the language's digit grouping and decimal sign."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=language)


def format_day(day: date, language: str) -> str:
    """A calendar day as the language writes it ("Dec 1, 2026", "1 dic 2026")."""
    return babel_format_date(day, format="medium", locale=language)


def format_timestamp(epoch_s: float, language: str, timezone: str | None = None) -> str:
    """A moment, in the participant's time zone when the vendor told us it, else UTC."""
    try:
        zone = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    return babel_format_datetime(moment, format="medium", tzinfo=zone, locale=language)


def format_wall_clock(moment: datetime, language: str) -> str:
    """A date and time as the vendor reported it (a device's local time, often without a zone): unshifted."""
    return babel_format_datetime(moment, format="medium", tzinfo=moment.tzinfo or UTC, locale=language)
