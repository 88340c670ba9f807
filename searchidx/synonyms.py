"""Synonyms: a file named at index time, kept with the index, applied to every query.

One group per line: ``covid, coronavirus, sars-cov-2`` (each finds the others), or one way:
``nyc => new york city`` (``nyc`` finds "new york city" too, not the other way round); blank
lines and lines starting with ``#`` are skipped. Words are matched as the index keeps them
(stemmed, accents folded), so ``Coronaviruses`` is in the group of ``coronavirus``; a member of
several words is searched as a phrase.

Queries are expanded when they are searched, not when articles are indexed: a new synonyms
file needs no rebuild. The expansion works on the parsed Whoosh query, after the query's caps
are checked on what was typed (:func:`searchidx.bounds.check_query`): a word or a quoted phrase
of a group becomes an ``Or`` of the group's members, in the same field with the same boost.
The service makes an index's synonyms the current ones for each search (a context variable,
as :mod:`searchidx.bounds` does with a request's budget), so every query it parses, retries
and relaxations included, is expanded the same way.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

from whoosh import query

from searchidx.errors import SearchidxError
from searchidx.ranking import FIELD_BOOSTS
from searchidx.schema import ANALYZER

#: The form a line must have, shown with every error.
_FORMAT = "write one group per line: 'covid, coronavirus, sars-cov-2' or 'nyc => new york city'"
#: Characters with a meaning in queries, which a synonym cannot have.
_SYNTAX = set('*?"():~^')

Words = tuple[str, ...]


class SynonymsError(SearchidxError):
    """A synonyms file that cannot be used: which file, which line, why, and the form wanted."""


class Synonyms:
    """Analysed word sequences and what each is searched as (itself among them); ``written``:
    each member as the file wrote it (an engine that analyses words itself searches that)."""

    def __init__(
        self, rules: dict[Words, tuple[Words, ...]], written: dict[Words, str] | None = None
    ) -> None:
        self.rules = rules
        self.written = written or {}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def expand(self, parsed: query.Query) -> query.Query:
        """``parsed`` with each word or phrase of a text field that starts a group replaced
        by the Or of the group; a new tree (parsed queries are cached and shared)."""
        if not self.rules:
            return parsed
        if type(parsed) is query.Term and parsed.fieldname in FIELD_BOOSTS:
            key: Words = (str(parsed.text),)
        elif type(parsed) is query.Phrase and parsed.fieldname in FIELD_BOOSTS:
            key = tuple(parsed.words)
        else:
            return parsed if parsed.is_leaf() else parsed.apply(self.expand)
        members = self.rules.get(key)
        if members is None:
            return parsed
        return query.Or([_leaf(parsed.fieldname, words, parsed.boost) for words in members])


def _leaf(field: str, words: Words, boost: float) -> query.Query:
    if len(words) == 1:
        return query.Term(field, words[0], boost=boost)
    return query.Phrase(field, list(words), boost=boost)


NONE = Synonyms({})


def read_file(path: Path) -> str:
    """The text of the synonyms file at ``path``, checked (:func:`parse`): what the index keeps."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SynonymsError(
            f"{path}: the synonyms file is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    except OSError as error:
        raise SynonymsError(
            f"{path}: cannot read the synonyms file ({error.strerror}); name a readable file"
        ) from None
    parse(text, str(path))
    return text


@functools.lru_cache(maxsize=16)
def parse(text: str, source: str = "synonyms") -> Synonyms:
    """The rules of a synonyms file's ``text``; :class:`SynonymsError` names ``source`` and
    the line of the first malformed one."""
    rules: dict[Words, dict[Words, None]] = {}
    written: dict[Words, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue

        def error(problem: str, number: int = number, line: str = line) -> SynonymsError:
            return SynonymsError(f"{source}:{number}: {line!r}: {problem}; {_FORMAT}")

        sides = line.split("=>")
        if len(sides) > 2:
            raise error("more than one '=>'")
        groups = [_members(side, error, written) for side in sides]
        if len(groups) == 2:
            sources, targets = groups
            for words in sources:
                rules.setdefault(words, {words: None}).update(dict.fromkeys(targets))
            continue
        if len(set(groups[0])) < 2:
            raise error("a group needs two different words or phrases, separated by commas")
        for words in groups[0]:
            rules.setdefault(words, {words: None}).update(dict.fromkeys(groups[0]))
    return Synonyms({key: tuple(members) for key, members in rules.items()}, written)


def _members(
    side: str, error: Callable[[str], SynonymsError], written: dict[Words, str]
) -> list[Words]:
    """The analysed words of each comma-separated member of one side of a line (each noted
    in ``written`` as written, the first time)."""
    members = []
    for member in side.split(","):
        member = member.strip()
        if not member:
            raise error("an empty member (a comma or '=>' with nothing beside it)")
        if syntax := sorted(_SYNTAX.intersection(member)):
            raise error(f"{member!r} has query syntax ({' '.join(syntax)}); write plain words")
        words = tuple(token.text for token in ANALYZER(member))
        if not words:
            raise error(f"{member!r} has no searchable word (only common words like 'the')")
        members.append(words)
        written.setdefault(words, member)
    return members


_current: ContextVar[Synonyms] = ContextVar("searchidx_synonyms", default=NONE)


@contextlib.contextmanager
def applied(synonyms: Synonyms) -> Iterator[Synonyms]:
    """Make ``synonyms`` the ones every query parsed meanwhile (in this context) is expanded by."""
    token = _current.set(synonyms)
    try:
        yield synonyms
    finally:
        _current.reset(token)


def current() -> Synonyms:
    return _current.get()
