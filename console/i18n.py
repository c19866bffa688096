"""The console's languages: English messages in the templates, a Babel catalog (locales/<code>.po)
per other language, and money and times formatted the way the viewer's locale writes them."""

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

from babel import Locale
from babel.dates import format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_percent

from money import MAX_AMOUNT, minor_unit_exponent

# Code -> the language's own name. English is the templates' own; each other has a catalog.
LANGUAGES = {"zh_CN": "简体中文", "en": "English"}
DEFAULT_LANGUAGE = "zh_CN"
DEFAULT_TIME_ZONE = "Asia/Shanghai"
_LOCALES = Path(__file__).parent / "locales"


@cache
def _catalog(language: str) -> dict[str, str]:
    if language == "en":
        return {}
    with (_LOCALES / f"{language}.po").open("rb") as po:
        return {m.id: m.string for m in read_po(po, locale=language) if m.id and m.string}


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for a browser's Accept-Language header."""
    wanted = [part.split(";")[0].strip().replace("-", "_") for part in (accept_language or "").split(",")]
    best = Locale.negotiate([w for w in wanted if w], list(LANGUAGES), sep="_")
    return str(best) if best else DEFAULT_LANGUAGE


def known_time_zone(name: str | None) -> str:
    return name if name in _time_zones() else DEFAULT_TIME_ZONE


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


class AmountUnreadable(ValueError):
    pass


def to_minor_units(text: str, currency: str) -> int:
    """"199.5" CNY -> 19950: what a person types, in the currency's minor units."""
    exponent = minor_unit_exponent(currency)
    try:
        minor = Decimal(text.strip().replace(",", "")) * 10**exponent
    except InvalidOperation:
        raise AmountUnreadable(text) from None
    if minor != minor.to_integral_value() or not 0 <= minor <= MAX_AMOUNT:
        raise AmountUnreadable(text)
    return int(minor)


class Translator:
    """Everything a page needs to speak the viewer's language and show their time zone."""

    def __init__(self, language: str, time_zone: str):
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self.time_zone = known_time_zone(time_zone)
        self._zone = ZoneInfo(self.time_zone)
        self._messages = _catalog(self.language)
        self.html_lang = self.language.replace("_", "-")

    def gettext(self, message: str, **values: object) -> str:
        text = self._messages.get(message, message)
        return text.format(**values) if values else text

    def money(self, amount: int, currency: str) -> str:
        """19900 CNY -> ¥199.00."""
        major = Decimal(amount).scaleb(-minor_unit_exponent(currency))
        return format_currency(major, currency, locale=self.language)

    def major(self, amount: int, currency: str) -> str:
        """The amount as a form field holds it: 19900 CNY -> 199.00."""
        exponent = minor_unit_exponent(currency)
        return f"{Decimal(amount).scaleb(-exponent):.{exponent}f}"

    def percent(self, share: float | None) -> str:
        """0.953 -> 95.3%; nothing for a share of nothing."""
        return "" if share is None else format_percent(share, "#,##0.#%", locale=self.language)

    def today(self) -> date:
        return datetime.now(self._zone).date()

    def when(self, instant: datetime | str | None) -> str:
        if instant is None:
            return ""
        if isinstance(instant, str):
            instant = datetime.fromisoformat(instant)
        return format_datetime(instant.astimezone(self._zone), "yyyy-MM-dd HH:mm:ss", locale=self.language)

    def local_input(self, instant: datetime | str) -> str:
        """The instant as a datetime-local field shows it, in the viewer's zone."""
        if isinstance(instant, str):
            instant = datetime.fromisoformat(instant)
        return instant.astimezone(self._zone).strftime("%Y-%m-%dT%H:%M")

    def from_local_input(self, text: str) -> datetime:
        """A datetime-local field's value, read in the viewer's zone."""
        return datetime.fromisoformat(text).replace(tzinfo=self._zone).astimezone(UTC)

    @staticmethod
    def past(due: datetime | str | None) -> bool:
        if isinstance(due, str):
            due = datetime.fromisoformat(due)
        return due is not None and due < datetime.now(UTC)

    def countdown(self, due: datetime | str | None, now: datetime) -> str:
        """"2 h 05 min left" or "overdue by 3 min": the same words the page's script keeps current."""
        if due is None:
            return ""
        if isinstance(due, str):
            due = datetime.fromisoformat(due)
        seconds = int((due - now).total_seconds())
        span = self.span(abs(seconds))
        return self.gettext("{span} left", span=span) if seconds >= 0 else self.gettext("overdue by {span}", span=span)

    def span(self, seconds: int) -> str:
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        if days:
            return self.gettext("{d} d {h} h", d=days, h=hours)
        if hours:
            return self.gettext("{h} h {m} min", h=hours, m=minutes)
        return self.gettext("{m} min {s} s", m=minutes, s=seconds)
