"""How text typed or pasted into the search box is read: operators only where they cannot be
punctuation, and stray syntax read as words (with a note), never an error.

The reading is a query text in Whoosh's syntax in which every character means what the README's
query-language table says:

* ``-`` is NOT only at the start of a word, before a letter, a quote or a bracket (``-cloud``);
  inside a word it separates words as the index does, and so do ``'`` (straight or curly),
  ``/``, ``#``, ``@``, ``!``, ``,`` and the rest (``.`` and ``&`` join: ``u.s``, ``at&t``): a
  word the index splits into several (``covid-19``, ``stay-at-home``, ``don't``) is searched
  as the phrase of those words;
* ``"…"``, ``“…”``, ``„…“`` and ``«…»`` quote a phrase; an unclosed quote is ignored;
* ``(`` and ``)`` group when they pair up; the others are ignored;
* ``AND``, ``OR``, ``NOT`` (in capitals, in a query that has small letters too) between words;
* ``name:value`` names a field only for the names of :data:`FIELDS`, with the value right after
  the colon (``pennsylvania: gov`` is two words); a pasted address (``https://…``, ``www.…``) is
  searched as its words, without ``http``, ``https`` and ``www``;
* ``*`` alone, or as a field's whole value (``title:*``), is every article; ``*`` and ``?`` are
  wildcards after two letters (``micro*``, ``wom?n``); ``?`` at the end of a
  word ends a question; ``word~`` and ``word~2`` are fuzzy, ``word^2`` boosts, and after a
  phrase ``"a b"~3`` allows words between, ``"a b"^2`` boosts.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

from searchidx import typed_values
from searchidx.ranking import FIELD_BOOSTS
from searchidx.schema import ANALYZER, WORD_PATTERN, fold

#: Field names a query may use (``name:value``), and the schema field each one searches.
FIELDS = {
    "title": "title",
    "excerpt": "excerpt",
    "body": "body",
    "topic": "topic",
    "provider": "provider",
    "domain": "domain",
    "category": "category",
    "type": "type",
    "published": "published",
    "date": "date",
    "quality": "quality",
}

_OPEN_QUOTES = '"“„«'
_CLOSE_QUOTES = '"”“»'
_QUOTES = _OPEN_QUOTES + _CLOSE_QUOTES
_OPERATORS = frozenset({"AND", "OR", "NOT"})
#: Whoosh's own operator words: text when typed, so written in small letters.
RESERVED_WORDS = frozenset({*_OPERATORS, "ANDNOT", "ANDMAYBE", "TO"})
_FIELD = re.compile(r"([A-Za-z_]\w*):(.*)", re.DOTALL)
_RANGE = re.compile(r"(-?)([A-Za-z_]\w*):([\[{][^\[\]{}()\"]*\bTO\b[^\[\]{}()\"]*[\]}])")
_URL = re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*://|www\.)\S+")
_WILDCARD = re.compile(r"\w{2,}[\w*?]*[*?][\w*?]*|\w{2,}\*")
_FUZZY = re.compile(r"\w+~\d?")
_BOOST = re.compile(r"\w+\^\d+(?:\.\d+)?")
_SUFFIX = re.compile(r"~\d+|\^\d+(?:\.\d+)?")
#: Characters that end a word without meaning anything (after a wildcard, fuzzy or boost).
_TRAILING = ".,;:!?')]}…\u2019"
#: A value of a facet field (``domain:forbes.com``, ``date:2022-05``), quoted for Whoosh.
_VALUE = re.compile(r"[\w.&/@+:-]+")
_WORDS = re.compile(WORD_PATTERN)
_TO = re.compile(r"\bTO\b")
_JOINS = re.compile(r"[.&]")
#: Words of letters and digits, one space apart: text whose every word is read as itself.
_PLAIN_WORDS = re.compile(r"[^\W_]+(?: [^\W_]+)*")


class Part(NamedTuple):
    """One required piece of a query whose every piece is required: its query text, the
    query texts of its separate words (a phrase's words; a word is its own), and whether it
    names a field (an intended condition, never dropped)."""

    text: str
    words: tuple[str, ...]
    fixed: bool = False


class Reading(NamedTuple):
    """A typed text as a query: ``query`` in Whoosh's syntax ("" when it has no words),
    ``notes`` on stray syntax read as words, and ``parts`` when every part is required (no
    OR, NOT or brackets): what a zero-result retry may drop."""

    query: str
    notes: tuple[str, ...] = ()
    parts: tuple[Part, ...] | None = None


@dataclass
class _Item:
    """A piece of the typed text: ``kind`` is word, phrase, raw (a wildcard, fuzzy word, boost,
    range or facet value: Whoosh syntax as typed), op, open or close."""

    kind: str
    text: str = ""
    words: tuple[str, ...] = ()
    field: str = ""
    negated: bool = False
    suffix: str = ""  # a phrase's slop (~2) or boost (^2)


@functools.lru_cache(maxsize=4096)
def read(text: str) -> Reading:
    """The query ``text`` means (see the module's docstring); never raises."""
    if _PLAIN_WORDS.fullmatch(text) and _OPERATORS.isdisjoint(words := text.split(" ")):
        return _words_read(words)
    return _scanned(text)


def _words_read(words: list[str]) -> Reading:
    """What :func:`_scanned` reads in words of letters and digits none of which is an
    operator (most typed queries), read without scanning them a character at a time and
    sorting them into items (25 us for two new words, a third of a new query's reading):
    each word itself, but the words the index does not keep, each a required part."""
    kept = [_plain(word) for word in words if _indexed(word)]
    return Reading(" ".join(kept), (), tuple(Part(word, (word,)) for word in kept) or None)


def _scanned(text: str) -> Reading:
    """:func:`read`, the text scanned a character at a time."""
    notes: list[str] = []
    items = _structured(_scan(text, notes), notes, capitals=not any(c.islower() for c in text))
    query = " ".join(_written(item) for item in items)
    flat = all(item.kind in ("word", "phrase", "raw") and not item.negated for item in items)
    parts = tuple(_part(item) for item in items) if flat and items else None
    return Reading(query, tuple(dict.fromkeys(notes)), parts)


def words_only(text: str) -> Reading:
    """``text`` read as words and nothing else: every operator character is punctuation."""
    return read(" ".join(_tokens(text)).lower())


# Scanning ------------------------------------------------------------------------------------


def _scan(text: str, notes: list[str]) -> list[_Item]:
    items: list[_Item] = []
    position, end = 0, len(text)
    negated, field_name = False, ""  # a prefix (-, field:) waiting for its quote or bracket
    groups: list[str] = []  # the field each open bracket searches ("": the text fields)
    while position < end:
        character = text[position]
        if character.isspace():
            position += 1
            negated, field_name = False, ""
            continue
        if character in _OPEN_QUOTES:
            close = _closing_quote(text, position + 1)
            if close < 0:
                notes.append(f"the quote {character} is never closed, so it was ignored")
                position += 1
                continue
            quoted = text[position + 1 : close]
            if facet := _facet(field_name, groups):  # a facet value, quotes and all
                value = " ".join(quoted.replace("'", " ").replace("\\", " ").split())
                items.extend(_facet_items(facet, field_name, value, negated, notes))
            else:
                found = _SUFFIX.match(text, close + 1)
                suffix = found.group(0) if found else ""
                items.append(
                    _Item(
                        "phrase",
                        words=_tokens(quoted),
                        field=field_name,
                        negated=negated,
                        suffix=suffix,
                    )
                )
                close += len(suffix)
            position, negated, field_name = close + 1, False, ""
            continue
        if character in _CLOSE_QUOTES:  # a closing quote with no opening one: punctuation
            position += 1
            continue
        if character in "()":
            kind = "open" if character == "(" else "close"
            items.append(_Item(kind, field=field_name, negated=negated))
            if kind == "open":
                groups.append(field_name or (groups[-1] if groups else ""))
            elif groups:
                groups.pop()
            position, negated, field_name = position + 1, False, ""
            continue
        if found := _RANGE.match(text, position):
            name = found.group(2).lower()
            if name in FIELDS:
                items.extend(_range_items(name, found.group(3), bool(found.group(1)), notes))
                position = found.end()
                continue
        stop = position
        while stop < end and not text[stop].isspace() and text[stop] not in _QUOTES + "()":
            stop += 1
        chunk = text[position:stop]
        position = stop
        waiting = position < end and text[position] in _OPEN_QUOTES + "("
        negated, field_name = _chunk(chunk, items, notes, waiting, groups)
    return items


def _facet(field_name: str, groups: list[str]) -> str:
    """The facet field (``domain``, ``date``, ...) words here are a value of, if any: the
    field named, or else the bracket's they are in."""
    field_name = field_name or (groups[-1] if groups else "")
    return field_name if field_name not in FIELD_BOOSTS else ""


def _facet_items(
    facet: str, field_name: str, value: str, negated: bool, notes: list[str]
) -> list[_Item]:
    """A value of ``facet`` (written after ``field_name:``, or in its bracket), quoted for
    Whoosh; none, with a note, if ``facet`` cannot take it (:mod:`searchidx.typed_values`)."""
    if not value:
        return []
    read = typed_values.read_value(facet, value)
    if read is None:
        notes.append(typed_values.left_out(facet, value, f"{facet}:{value}"))
        return []
    prefix = f"{field_name}:" if field_name else ""
    return [_Item("raw", f"{prefix}'{read}'", negated=negated)]


def _range_items(name: str, bounds: str, negated: bool, notes: list[str]) -> list[_Item]:
    """A range of field ``name`` (``bounds``: ``[2020 TO 2022]``) in Whoosh's syntax; none,
    with a note, if the field cannot take one of its ends."""
    ends = [end.strip().strip("'") for end in _TO.split(bounds[1:-1], maxsplit=1)]
    read = [typed_values.read_value(name, end) if end else "" for end in ends]
    if None in read:
        bad = ends[read.index(None)]
        notes.append(typed_values.left_out(name, bad, f"{name}:{bounds}"))
        return []
    inner = " ".join(filter(None, [read[0], "TO", read[1]]))
    return [_Item("raw", f"{name}:{bounds[0]}{inner}{bounds[-1]}", negated=negated)]


def _closing_quote(text: str, start: int) -> int:
    return min((at for quote in _CLOSE_QUOTES if (at := text.find(quote, start)) >= 0), default=-1)


def _chunk(
    chunk: str, items: list[_Item], notes: list[str], waiting: bool, groups: list[str]
) -> tuple[bool, str]:
    """Add the items of one run of text without spaces, quotes or brackets; returns the prefix
    (negated, field) when the run is only a prefix of the quote or bracket right after it."""
    negated = False
    if chunk.startswith("-") and len(chunk) > 1 and (chunk[1].isalpha() or chunk[1] == "_"):
        negated, chunk = True, chunk[1:]
    elif chunk == "-" and waiting:
        return True, ""
    if chunk in _OPERATORS and not negated:
        items.append(_Item("op", chunk))
        return False, ""
    if _URL.match(chunk):
        words = _address_words(chunk)
        notes.append(f"the address {chunk} was searched as its words: {' '.join(words)}")
        items.extend(_Item("word", word, (word,)) for word in words)
        return False, ""
    field_name = ""
    if found := _FIELD.fullmatch(chunk):
        name, value = found.group(1).lower(), found.group(2)
        if name in FIELDS:
            if not value:
                return (negated, name) if waiting else (False, "")
            field_name, chunk = name, value
        elif value and value[0].isalnum():
            notes.append(
                f"{found.group(1)!r} is not a field name (use one of "
                f"{', '.join(FIELDS)}), so {chunk!r} was read as words"
            )
    if chunk[:1] in "*?" and chunk.strip("*?" + _TRAILING):
        searched = " ".join(_tokens(chunk)) or "nothing"
        notes.append(
            f"a word cannot start with a wildcard ({chunk!r} would test every word of "
            f"the index), so it was searched as {searched}"
        )
    items.extend(_word_items(chunk, field_name, negated, _facet(field_name, groups), notes))
    return False, ""


def _word_items(
    chunk: str, field_name: str, negated: bool, facet: str, notes: list[str]
) -> list[_Item]:
    core = chunk.rstrip(_TRAILING)
    if core == "*":  # every article (alone, or as a field's whole value): a browse
        return [_Item("raw", f"{field_name}:*" if field_name else "*", negated=negated)]
    if facet:  # a facet value as typed
        if value := _VALUE.match(core):
            return _facet_items(facet, field_name, value.group(0), negated, notes)
        if core:  # only characters no value has (quality:[80], a range without TO)
            notes.append(typed_values.left_out(facet, chunk, f"{facet}:{chunk}"))
        return []
    if _WILDCARD.fullmatch(core) or _FUZZY.fullmatch(core) or _BOOST.fullmatch(core):
        prefix = f"{field_name}:" if field_name else ""
        return [_Item("raw", prefix + fold(core), negated=negated)]  # Whoosh does not analyse it
    words = _tokens(chunk)
    if not words:
        return []
    return [_Item("phrase" if len(words) > 1 else "word", words[0], words, field_name, negated)]


def _address_words(address: str) -> tuple[str, ...]:
    """The words of a pasted web address: its site (without www) and the words of its path."""
    parts = urlsplit(address if "://" in address else "http://" + address)
    host = parts.hostname or ""
    host = host[4:] if host.startswith("www.") else host
    return tuple(dict.fromkeys(_tokens(" ".join([host, parts.path, parts.query]))))


def _tokens(text: str) -> tuple[str, ...]:
    """The words of ``text`` as the index splits them, wildcard characters left out."""
    return tuple(found.group(0) for found in _WORDS.finditer(text.replace("*", " ")))


# Structure -----------------------------------------------------------------------------------


def _structured(items: list[_Item], notes: list[str], capitals: bool) -> list[_Item]:
    """Drop what is not a query: words the index does not keep (stop words),
    unpaired brackets, operators without operands."""
    kept = []
    for item in items:
        if item.kind == "op" and capitals:
            continue  # a query in capitals only: AND, OR and NOT are words (stop words)
        if item.kind in ("word", "phrase"):
            item.words = tuple(word for word in item.words if _indexed(word))
            if not item.words:
                continue
            if len(item.words) == 1:
                item.kind = "word"
            item.text = item.words[0]
        kept.append(item)
    kept = _paired(kept, notes)
    while (number := _stray(kept)) is not None:
        del kept[number : number + (2 if kept[number].kind == "open" else 1)]
    if not any(
        item.kind == "op" or (item.kind == "open" and (item.negated or item.field)) for item in kept
    ):
        kept = [item for item in kept if item.kind not in ("open", "close")]  # all AND anyway
    return kept


def _stray(items: list[_Item]) -> int | None:
    """Where the first operator without its operands, or the first empty group, is."""
    for number, item in enumerate(items):
        before = items[number - 1] if number else None
        after = items[number + 1] if number + 1 < len(items) else None
        if item.kind == "open" and after is not None and after.kind == "close":
            return number
        if item.kind != "op":
            continue
        operand_after = after is not None and (
            after.kind not in ("op", "close") or (after.text == "NOT" and item.text != "NOT")
        )
        operand_before = before is not None and before.kind not in ("op", "open")
        if not (operand_after and (item.text == "NOT" or operand_before)):
            return number
    return None


def _paired(items: list[_Item], notes: list[str]) -> list[_Item]:
    """``items`` without the brackets that do not pair up."""
    open_at: list[int] = []
    unpaired = set()
    for number, item in enumerate(items):
        if item.kind == "open":
            open_at.append(number)
        elif item.kind == "close":
            if open_at:
                open_at.pop()
            else:
                unpaired.add(number)
                notes.append("a ')' with no '(' before it was ignored")
    if open_at:
        notes.append("a '(' that is never closed was ignored")
    unpaired.update(open_at)
    return [item for number, item in enumerate(items) if number not in unpaired]


@functools.lru_cache(maxsize=65536)
def _indexed(word: str) -> bool:
    """Whether the index keeps ``word`` (not a stop word)."""
    return any(True for _ in ANALYZER(word))


def _written(item: _Item) -> str:
    """The item in Whoosh's syntax."""
    sign = "-" if item.negated else ""
    prefix = f"{item.field}:" if item.field else ""
    if item.kind == "word":
        return sign + prefix + _plain(item.text)
    if item.kind == "phrase":
        return sign + prefix + '"' + " ".join(item.words) + '"' + item.suffix
    if item.kind == "open":
        return sign + prefix + "("
    if item.kind == "close":
        return ")"
    return sign + item.text  # op, raw


def _separated(word: str) -> list[str]:
    """The words a word joined by "." or "&" is made of, or the word if none is indexed."""
    return [part for part in _JOINS.split(word) if _indexed(part)] or [word]


def _plain(word: str) -> str:
    return word.lower() if word in RESERVED_WORDS else word


def _part(item: _Item) -> Part:
    """The item as a required part; its words are those of a phrase, or of a word joined by
    "." or "&" (``death.toll``): what a retry searches separately."""
    prefix = f"{item.field}:" if item.field else ""
    fixed = bool(item.field) or (item.kind == "raw" and bool(_FIELD.match(item.text)))
    if item.kind == "raw":
        return Part(_written(item), (_written(item),), fixed)
    words = [part for word in item.words for part in _separated(word)]
    if item.kind == "word" and len(words) < 2:
        return Part(_written(item), (_written(item),), fixed)
    return Part(_written(item), tuple(prefix + _plain(word) for word in words), fixed)
