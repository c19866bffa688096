"""Every message the console shows has a translation in every language, with the same
placeholders; money and times read the way people write them."""

import re
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest

from console.i18n import LANGUAGES, AmountUnreadable, Translator, _catalog, to_minor_units

CONSOLE = Path(__file__).parent.parent / "console"
_LITERAL = r"""\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')"""


def _messages() -> set[str]:
    found = set()
    for template in (CONSOLE / "templates").glob("*.html"):
        found |= {a or b for a, b in re.findall(r"\b_" + _LITERAL, template.read_text())}
    for module in CONSOLE.glob("*.py"):
        found |= {a or b for a, b in re.findall(r"gettext" + _LITERAL, module.read_text())}
    return found


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != "en"])
def test_every_message_is_translated_with_its_placeholders(language: str) -> None:
    catalog = _catalog(language)
    messages = _messages()
    assert len(messages) > 100
    missing = sorted(m for m in messages if m not in catalog)
    assert not missing, f"{language} lacks {missing}"
    assert [m for m in messages if _placeholders(catalog[m]) != _placeholders(m)] == []


def test_money_and_times_read_as_people_write_them() -> None:
    chinese = Translator("zh_CN", "Asia/Shanghai")
    assert chinese.money(19_900, "CNY") == "¥199.00"
    assert chinese.money(500, "JPY") == "JP¥500"
    assert Translator("en", "UTC").money(19_900, "CNY") == "CN¥199.00"
    instant = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)
    assert chinese.when(instant) == "2026-12-02 00:30:00"
    assert Translator("en", "Europe/Berlin").when(instant) == "2026-12-01 17:30:00"
    assert chinese.from_local_input("2026-12-02T00:30") == instant
    assert Translator("en", "Not/AZone").time_zone == "Asia/Shanghai"


def test_typed_amounts_become_minor_units() -> None:
    assert to_minor_units("120.50", "CNY") == 12_050
    assert to_minor_units(" 1,000 ", "CNY") == 100_000
    assert to_minor_units("500", "JPY") == 500
    for unreadable in ("12.345", "-1", "abc", "", "1e30"):
        with pytest.raises(AmountUnreadable):
            to_minor_units(unreadable, "CNY")
