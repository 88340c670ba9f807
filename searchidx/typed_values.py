"""The values typed for the fields of dates, numbers and flags (``date:``, ``quality:``,
``published:``), checked as the text is read (:mod:`searchidx.typedtext`).

Whoosh's parser makes a value it cannot read (``date:2021-13``, ``quality:abc``) a query that
matches nothing, with an error no one reads, and fails the whole query on such a value in a
range; a search instead leaves the condition out with a note naming the forms that work, and
searches the rest. A full ISO time (``2021-06-07T10:30:05Z``, as the API shows dates) is passed
on in the digits Whoosh's date parser reads: its ``T`` and colons it takes for garbage.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from whoosh.qparser.common import QueryParserError

from searchidx.schema import build_schema

#: Each checked field: what a value must be, and the forms that work (the README's).
_TAKES = {
    "date": (
        "a date",
        "date:2022, date:2022-05, date:2022-05-14, date:2022-05-14T10:30:05Z (UTC) "
        "or a range: date:[2020 TO 2022-06]",
    ),
    "quality": (
        "a quality",
        "a whole number: quality:80, or a range: quality:[80 TO 100], quality:[80 TO]",
    ),
    "published": ("true or false", "published:true or published:false"),
}
_FLAGS = ("true", "false")
_SCHEMA = build_schema()
#: An ISO 8601 time: a day, an hour at least, and a zone (none is UTC, as indexed).
_ISO_TIME = re.compile(
    r"(\d{4})-?(\d\d)-?(\d\d)[Tt ](\d\d)(?::?(\d\d)(?::?(\d\d)(?:[.,](\d{1,6}))?)?)?"
    r"(?:[Zz]|([+-])(\d\d):?(\d\d))?"
)
#: Whoosh's date digits, padded to a microsecond.
_DIGITS = "%Y%m%d%H%M%S%f"
#: A note of :func:`left_out`: the value's problem, the condition typed, the forms that work.
_LEFT_OUT = re.compile(r"(.+?), so (.+) was left out( \(.+\))?", re.DOTALL)


def read_value(field: str, value: str) -> str | None:
    """``value`` of ``field`` as Whoosh's parser is to read it; None when ``field`` cannot take
    it. Values of fields not checked are returned as they are."""
    if field == "published":
        return value.lower() if value.lower() in _FLAGS else None
    if field not in _TAKES:
        return value
    value = _utc_digits(value) if field == "date" else value
    try:  # as the schema's field parses it: a date's error is an error query, a number's raised
        parsed = _SCHEMA[field].parse_query(field, value)
    except QueryParserError:
        return None
    return None if getattr(parsed, "error", None) is not None else value


def left_out(field: str, value: str, typed: str) -> str:
    """The note on ``typed``, a condition left out because ``field`` cannot take ``value``."""
    if field not in _TAKES:
        return f"{value!r} is not a value of {field}:, so {typed} was left out"
    what, forms = _TAKES[field]
    return f"{value!r} is not {what}, so {typed} was left out ({field}: takes {forms})"


def refusal(note: str) -> str | None:
    """What a strict check (``searchidx query --strict``) says instead of ``note`` when it is
    a note of :func:`left_out`: there the condition is refused rather than left out; None for
    any other note."""
    found = _LEFT_OUT.fullmatch(note)
    if found is None:
        return None
    problem, typed, forms = found.groups()
    return f"{problem} in {typed}{forms or ''}"


def _utc_digits(value: str) -> str:
    """A full ISO time as Whoosh's date parser reads one (``YYYYMMDDhh[mm[ss[uuuuuu]]]``, in
    UTC, as precise as typed); any other value as it is (a zone that moves the time by less
    than its precision, ``T10+05:30``, too: the parser then refuses it)."""
    found = _ISO_TIME.fullmatch(value)
    if not found:
        return value
    *parts, fraction, sign, hours, minutes = found.groups()
    digits = "".join(filter(None, parts)) + (fraction.ljust(6, "0") if fraction else "")
    if not sign:
        return digits
    try:
        moment = datetime.strptime(digits.ljust(20, "0"), _DIGITS)
        shift = timedelta(hours=int(hours), minutes=int(minutes))
        utc = moment - shift if sign == "+" else moment + shift
    except (ValueError, OverflowError):
        return digits  # not a time (month 13): the parser refuses it
    shifted = f"{utc.year:04}{utc:%m%d%H%M%S%f}"  # %Y leaves years before 1000 unpadded
    within = shifted[len(digits) :].strip("0") == ""
    return shifted[: len(digits)] if within else value
