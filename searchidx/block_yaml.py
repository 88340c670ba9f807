"""The common shape of a front matter, read without libyaml: the same values, in half the time.

libyaml's parser builds a node and two marks for each of a front matter's some 90 values,
then PyYAML's Python callbacks resolve and build them: about 150 µs a file, an eighth of
indexing it. Most front matters are block mappings and sequences of one-line scalars
(``key: value``, ``key: "text"``, ``- item``, ``- key: value``), which :func:`load` reads a
line at a time. Anything else -- a comment, a flow collection, an anchor, a tag, a quoted text
with an escape other than ``\\"``, a scalar over several lines, a tab, an unusual character,
a line of another shape -- makes it give up (None), and the caller loads the text with PyYAML,
whose errors name the line. What it reads is what PyYAML's C loader builds: each plain
scalar's tag resolved by PyYAML's resolver, its value built by PyYAML's safe constructor
(tests/test_parsing.py compares the two on documents written to find the differences).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

#: Plain scalars' implicit tags (and constructed values) kept before each memo starts again.
_RESOLVED_SCALARS = 100_000
#: Plain scalar -> its implicit tag.
_RESOLVED: dict[str, str] = {}
#: (tag, text) -> the value PyYAML's constructor made of it, for tags whose values are
#: immutable and few (``true``, a quality): built once.
_SCALARS: dict[tuple[str, str], Any] = {}
#: Those tags (null, bool, int, float).
IMMUTABLE_TAGS = frozenset(f"tag:yaml.org,2002:{kind}" for kind in ("null", "bool", "int", "float"))
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
#: The timestamp of nearly every front matter, and of each related article: a time in UTC
#: to the second ("2022-06-24T14:08:00Z"), which PyYAML's constructor builds in Python with a
#: regular expression of its own (3 us), and ``datetime.fromisoformat`` the same in 0.4.
_UTC_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
#: Plain scalar -> its value, when text or immutable.
_PLAIN_VALUES: dict[str, Any] = {}

_RESOLVER: Any = Resolver()  # untyped in PyYAML's stubs
_CONSTRUCTOR = SafeConstructor()

#: Characters the line reader leaves to libyaml: anything but a line feed, printable ASCII and
#: the printable rest of Unicode -- so tabs, carriage returns, YAML's other line breaks (U+0085,
#: U+2028, U+2029), control characters, a byte order mark and surrogates.
_UNUSUAL = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
#: A plain scalar on one line: starts with a word character (or ``-`` and a digit), holds no
#: ``#``, no quote, no ``:`` before a space or its end, words apart by spaces. Trailing spaces
#: are not part of it (libyaml drops them too).
_WORDS = r"[\w.+\-/]+(?::[\w.+\-/]+)*"
_PLAIN = rf"(?:-(?=\d)|(?=\w)){_WORDS}(?: +{_WORDS})*"
#: A scalar: double-quoted (its escapes only ``\"``, ``\\`` and ``\/``, each the character
#: after its backslash), single-quoted without quotes, or plain.
_SCALAR = rf'"([^"\\]*(?:\\["\\/][^"\\]*)*)"|\'([^\']*)\'|({_PLAIN})'
_ESCAPE = re.compile(r"\\(.)")
#: A line: its indent, ``- `` (an item), ``key:`` (a plain key of letters, never a merge
#: ``<<`` or value ``=`` key, shorter than libyaml's limit of 1,024 characters for a key), a
#: scalar. Groups: indent, item, key, double-quoted, single-quoted, plain.
_LINE = re.compile(
    rf"( *)(-(?: +|$))?(?:([A-Za-z_][A-Za-z0-9_]{{0,127}}):(?: +|$))?(?:{_SCALAR})? *"
)

#: A line read: its indent, whether it is an item, its key (or :data:`_NO_KEY`), its scalar (or
#: :data:`_NO_VALUE`). ``- key: value`` is read as two: an item, and an entry further in.
_Row = tuple[int, bool, Any, Any]
_NO_KEY = _NO_VALUE = object()


#: Short lines read -> their rows (:func:`_line_rows`), which depend on the line alone: most
#: lines of a front matter are in other files too ("type: article", "    width: 1200", a
#: provider's domain), two in three of the benchmark collection's, nearly all of them short
#: (a title, an excerpt or an address is a file's own). Values are immutable (text, numbers,
#: timestamps), so files share them. Kept up to :data:`_LINES_KEPT`, then started again.
_READ_LINES: dict[str, tuple[_Row, ...]] = {}
#: Lines of at most this many characters are kept: 65% of lines were read again at 10,000
#: kept (some 3 MB), 70% keeping lines of any length at 50,000 (17 MB).
_SHORT_LINE = 40
_LINES_KEPT = 20_000


class _Unusual(Exception):
    """A line :func:`load` does not read: PyYAML loads the whole text."""


#: Lines of a text :func:`load` reads at most. A line gives at most three values (an item's
#: first key: the item's mapping, the key, its value), none shared (no aliases), so what it
#: reads holds at most ``1 + 3 * MOST_LINES`` values, the mapping included: fewer than a
#: front matter may have (``parsing.MAX_FRONT_MATTER_VALUES``), and not counted again.
MOST_LINES = 6_000


def load(text: str) -> dict[Any, Any] | None:
    """The block mapping ``text`` as PyYAML's C safe loader builds it, or None when the text
    is not of the shape read here, is empty, has over :data:`MOST_LINES` lines, nests too deep,
    or has a value PyYAML cannot build (PyYAML then reports the error it finds first)."""
    if _UNUSUAL.search(text) or text.count("\n") >= MOST_LINES:
        return None
    try:
        rows = _rows(text)
        if not rows or rows[-1][0] or rows[-1][1]:
            return None  # empty, indented, or a sequence
        mapping = _mapping(rows, 0)
    except (_Unusual, ValueError, OverflowError, RecursionError):
        return None  # RecursionError: nested deeper than Python's stack; libyaml says how deep
    return None if rows else mapping


def _rows(text: str) -> list[_Row]:
    """The lines of ``text`` read, the last first (they are taken from the end)."""
    rows: list[_Row] = []
    read = _READ_LINES
    for line in reversed(text.split("\n")):
        found = read.get(line)
        if found is None:
            found = _line_rows(line)
            if len(line) <= _SHORT_LINE:
                if len(read) >= _LINES_KEPT:
                    read.clear()
                read[line] = found
        rows += found
    return rows


def _line_rows(line: str) -> tuple[_Row, ...]:
    """The rows of one line, as :func:`_rows` takes them: none for a blank line, one for a
    key or an item, two for an item's first key."""
    match = _LINE.fullmatch(line)
    if match is None:
        raise _Unusual
    indent, item, key, double, single, plain = match.groups()
    if len(indent) == len(line):  # a blank line
        return ()
    if plain is not None:
        value = _plain(plain)
    elif double is not None:
        value = _ESCAPE.sub(r"\1", double) if "\\" in double else double
    else:
        value = _NO_VALUE if single is None else single
    if key is None:
        return ((len(indent), item is not None, _NO_KEY, value),)
    key = _plain(key)  # text, or a bool or null ("yes", "null")
    if item is None:
        return ((len(indent), False, key, value),)
    return ((len(indent) + len(item), False, key, value), (len(indent), True, _NO_KEY, _NO_VALUE))


def _mapping(rows: list[_Row], indent: int) -> dict[Any, Any]:
    """The entries at ``indent`` from the next row on."""
    mapping: dict[Any, Any] = {}
    while rows and rows[-1][0] == indent:
        _, item, key, value = rows.pop()
        if item or key is _NO_KEY:  # an item (a sequence at the key's own indent), a scalar
            raise _Unusual
        mapping[key] = _value(rows, indent, value)
    return mapping


def _sequence(rows: list[_Row], indent: int) -> list[Any]:
    """The items at ``indent`` from the next row on."""
    sequence: list[Any] = []
    while rows and rows[-1][0] == indent and rows[-1][1]:
        sequence.append(_value(rows, indent, rows.pop()[3]))
    return sequence


def _value(rows: list[_Row], indent: int, value: Any) -> Any:
    """The value of a key or item at ``indent``: its scalar, or the collection on the rows
    more indented, or null (an empty plain scalar, as PyYAML resolves it). A row more
    indented after a scalar (its next line, or a collection) is left over: not read."""
    if value is not _NO_VALUE:
        return value
    inner = rows[-1][0] if rows else -1
    if inner <= indent:
        return None
    return _sequence(rows, inner) if rows[-1][1] else _mapping(rows, inner)


def _plain(text: str) -> Any:
    """A plain scalar's value, as PyYAML resolves and builds it: text, or a null, bool, int
    or float (:func:`scalar_value`) kept by text; anything else (a timestamp) built anew."""
    value = _PLAIN_VALUES.get(text, _NO_VALUE)
    if value is _NO_VALUE:
        tag = plain_tag(text)
        if tag != _STR and tag not in IMMUTABLE_TAGS:
            return _construct(tag, text)
        if len(_PLAIN_VALUES) >= _RESOLVED_SCALARS:
            _PLAIN_VALUES.clear()
        value = _PLAIN_VALUES[text] = text if tag == _STR else scalar_value(tag, text)
    return value


def plain_tag(text: str) -> str:
    """The implicit tag PyYAML's resolver gives the plain scalar ``text`` (it depends on the
    text alone: resolved once, where its regular expressions, in Python, took a quarter of
    loading a front matter)."""
    tag = _RESOLVED.get(text)
    if tag is None:
        if len(_RESOLVED) >= _RESOLVED_SCALARS:
            _RESOLVED.clear()
        tag = _RESOLVED[text] = _RESOLVER.resolve(ScalarNode, text, (True, False))
    return tag


def scalar_value(tag: str, text: str) -> Any:
    """What PyYAML's safe constructor builds of a scalar ``text`` tagged ``tag``: a null,
    bool, int or float once per text (immutable values, the same few in every file)."""
    if tag not in IMMUTABLE_TAGS:
        return _construct(tag, text)
    key = (tag, text)
    try:
        return _SCALARS[key]
    except KeyError:
        if len(_SCALARS) >= _RESOLVED_SCALARS:
            _SCALARS.clear()
        value = _SCALARS[key] = _construct(tag, text)
        return value


def _construct(tag: str, text: str) -> Any:
    """PyYAML's safe constructor's value for a scalar (its function for the tag, as
    ``construct_object`` calls it, without the memo of nodes a loader keeps)."""
    if tag == _TIMESTAMP and _UTC_SECOND.fullmatch(text):
        return datetime.fromisoformat(text)  # what PyYAML makes of it: a datetime in UTC
    return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, ScalarNode(tag, text))
