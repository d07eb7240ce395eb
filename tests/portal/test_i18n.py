"""Languages: every message of the templates (and of the app's chart labels) is in the Spanish
catalog, the catalog compiles in memory, the browser's language is honoured, and dates and
numbers follow the page's language."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

import portal.app
from portal.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    TEMPLATE_DIR,
    catalog_path,
    environment,
    format_day,
    format_number,
    format_timestamp,
    format_wall_clock,
    language_from_header,
    translations,
)


def _msgids() -> set[str]:
    found: set[str] = set()
    templates = sorted(TEMPLATE_DIR.glob("*.html"))
    assert templates
    for template in templates:
        with template.open("rb") as source:
            options = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}
            found |= {message for _, message, _, _ in extract(babel_extract, source, options=options)
                      if isinstance(message, str)}
    with Path(portal.app.__file__).open("rb") as source:  # the chart's words are made in Python
        found |= {message for _, message, _, _ in extract("python", source, keywords={"gettext": None})
                  if isinstance(message, str)}
    return found


def test_every_message_has_a_spanish_translation() -> None:
    with catalog_path("es").open("rb") as po:
        catalog = read_po(po, locale="es")
    msgids = _msgids()
    assert "Linked" in msgids and "Not linked" in msgids and len(msgids) > 50
    missing = sorted(m for m in msgids if m not in catalog or not catalog[m].string)
    assert missing == []
    unused = sorted(str(m.id) for m in catalog if m.id and m.id not in msgids)
    assert unused == []  # a stale entry means the templates changed and the catalog did not follow
    assert catalog["Linked"].string == "Vinculado" and catalog["Not linked"].string == "No vinculado"


def test_no_compiled_catalog_is_kept_in_the_repository() -> None:
    assert not list(catalog_path("es").parent.glob("*.mo"))
    assert translations("es").gettext("Stop sharing") == "Dejar de compartir"
    assert translations(DEFAULT_LANGUAGE).gettext("Stop sharing") == "Stop sharing"
    with pytest.raises(ValueError, match="unsupported"):
        translations("fr")


@pytest.mark.parametrize(("header", "expected"), [
    (None, "en"), ("", "en"), ("es", "es"), ("es-MX,es;q=0.9", "es"), ("fr-FR, es;q=0.5, en;q=0.4", "es"),
    ("en-US,en;q=0.9,es;q=0.8", "en"), ("de, fr", "en"), ("es;q=0, en", "en"), ("*", "en"), ("es;q=bad", "en"),
])
def test_the_browsers_language(header: str | None, expected: str) -> None:
    assert language_from_header(header) == expected


def test_dates_and_numbers_follow_the_language() -> None:
    assert format_number(12345, "en") == "12,345" and format_number(12345, "es") == "12.345"
    assert format_number(61.5, "es", digits=1) == "61,5"
    assert format_day(date(2026, 12, 1), "en") == "Dec 1, 2026"
    assert "dic" in format_day(date(2026, 12, 1), "es")
    noon_utc = 1764590400.0  # 2025-12-01 12:00 UTC
    assert "12:00" in format_timestamp(noon_utc, "en") or "12:00:00" in format_timestamp(noon_utc, "en")
    assert "13:00" in format_timestamp(noon_utc, "es", "Europe/Madrid")
    assert format_timestamp(noon_utc, "en", "Not/AZone") == format_timestamp(noon_utc, "en")
    assert "8:05" in format_wall_clock(datetime(2026, 11, 30, 8, 5), "es")  # the device's own clock, unshifted


def test_a_spanish_environment_translates_and_escapes() -> None:
    env = environment("es")
    rendered = env.from_string('{% trans name="<b>" %}Connect with {{ name }}{% endtrans %} {{ _("Linked") }}').render()
    assert rendered == "Conectar con &lt;b&gt; Vinculado"
    assert set(LANGUAGES) == {"en", "es"}
