"""Reading article files into :class:`~searchidx.articles.Article` records.

A file is YAML front matter between two ``---`` lines, then a Markdown body. Required: a
non-empty ``title`` and a ``publishedDateTime`` that parses. Every other field is optional and
gets a default (see README, "Article files"). Anything wrong raises :class:`ArticleError` with the
file, the line where known, and what to do about it; the indexer collects those and goes on.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from searchidx import block_yaml
from searchidx.articles import Article, Image, Provider, RelatedArticle
from searchidx.errors import ArticleError

#: Larger files are refused unread: no real article comes near it, and it bounds the work.
MAX_FILE_BYTES = 1024 * 1024

#: Values in one front matter, counted through aliases; stops "billion laughs" documents whose
#: anchors expand a few lines into millions of values.
MAX_FRONT_MATTER_VALUES = 20_000

# libyaml's C loader is about eight times faster; both are safe loaders (no Python objects).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR, _MAP, _SEQ = (f"tag:yaml.org,2002:{kind}" for kind in ("str", "map", "seq"))
#: Keys PyYAML's constructor gives a meaning of their own: ``<<`` (merge) and ``=`` (value).
_SPECIAL_KEYS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})


class _Loader(_SafeLoader):  # type: ignore[valid-type,misc]
    """The safe loader, the implicit tag of each plain scalar resolved once.

    PyYAML's resolver tries its regular expressions on every plain scalar, in Python: a
    quarter of loading a front matter, where the same values (``true``, ``article``, a
    quality) come back in every file. A plain scalar's tag depends on its text alone.
    """

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is not ScalarNode or not implicit[0]:
            return cast(str, super().resolve(kind, value, implicit))
        return block_yaml.plain_tag(value)


class _Unusual(Exception):
    """A node :func:`_load_yaml` leaves to PyYAML's constructor."""


_DELIMITER = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)

#: What YAML refuses as raw text but produces from escapes ("\0", "\x1f"): control characters
#: and non-characters. Refused in text values too: the facet columns separate values with U+001F.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")


def read_article(root: Path, relpath: str) -> Article:
    """Read and parse the file ``root/relpath``; raises :class:`ArticleError`."""
    data, _ = read_bounded(root, relpath)
    return parse_article(decode_article(data, relpath), relpath)


def read_bounded(root: Path, relpath: str) -> tuple[bytes, os.stat_result]:
    """The bytes of a file (at most one past the size limit) and the stat of the open file.

    The stat is taken before reading: a write that lands while the file is read then shows as a
    newer stat at the next sync, which reads the file again. Taken after, it would record the
    new stat with the old bytes, and the change would never be indexed.
    """
    try:
        descriptor = _open_inside(str(root), relpath)
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise ArticleError(relpath, "not a regular file (a pipe, device or socket)")
            return _read_at_most(descriptor, info.st_size), info
        finally:
            os.close(descriptor)
    except OSError as error:
        reason = "a loop of symbolic links" if error.errno == errno.ELOOP else error.strerror
        raise ArticleError(relpath, f"cannot read the file: {reason or error}") from None


#: How an article file is opened: never blocking (a pipe), never through a link.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW
#: Parts of a relative path that could lead out of the folder without a link.
_UPWARD = frozenset({"", ".", ".."})


def _open_inside(root: str, relpath: str) -> int:
    """A descriptor of the file ``root/relpath``, if it is still inside ``root``.

    The folder was listed a moment ago; what is there now may be a link out of it, or a pipe
    that would block the open. Where no folder below ``root`` on the way is a link (one
    ``lstat`` each) and the file itself is none (the open refuses it), the file is inside
    as named. Else the real paths decide, as they did for every file: 36 -> 10 us a file
    (resolving ``root`` and the whole path took two thirds of reading a file). Strings and
    os calls, not pathlib and a buffered file (the buffered read of MAX_FILE_BYTES + 1
    allocated a megabyte each time).
    """
    *folders, _ = parts = relpath.split("/")
    if _UPWARD.isdisjoint(parts):
        folder = root
        for name in folders:
            folder = f"{folder}/{name}"
            if stat.S_ISLNK(os.lstat(folder).st_mode):
                break
        else:
            try:
                return os.open(f"{root}/{relpath}", _OPEN_FLAGS)
            except OSError as error:
                if error.errno != errno.ELOOP:  # a link: followed below if it stays inside
                    raise
    path = os.path.realpath(os.path.join(root, relpath), strict=True)
    inside = os.path.realpath(root, strict=True)
    if os.path.commonpath([path, inside]) != inside:
        raise ArticleError(
            relpath, "leads out of the content folder through a symbolic link; not followed"
        )
    return os.open(path, _OPEN_FLAGS)


def _read_at_most(descriptor: int, size: int) -> bytes:
    """The file's bytes up to one past :data:`MAX_FILE_BYTES`, read in as many calls as it
    takes (two for a file of ``size`` bytes that did not grow since its stat)."""
    parts: list[bytes] = []
    read = 0
    while read <= MAX_FILE_BYTES:
        part = os.read(descriptor, min(MAX_FILE_BYTES + 1 - read, max(size + 1 - read, 1 << 16)))
        if not part:
            break
        parts.append(part)
        read += len(part)
    return b"".join(parts)


def decode_article(data: bytes, relpath: str) -> str:
    """UTF-8 text of a file, or an error naming the line of the first bad byte."""
    if len(data) > MAX_FILE_BYTES:
        raise ArticleError(
            relpath, f"file is over the {MAX_FILE_BYTES:,}-byte limit; split it or trim its body"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ArticleError(
            relpath,
            f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "save the file as UTF-8",
            line,
        ) from None
    if "\x00" in text:
        raise ArticleError(relpath, "binary file (contains NUL bytes), not an article")
    return text.removeprefix("\ufeff")


def parse_article(text: str, relpath: str) -> Article:
    """Parse the text of one article file into an :class:`Article`."""
    front_matter, body = split_front_matter(text, relpath)
    fields = load_front_matter(front_matter, relpath)
    return _build_article(fields, body, relpath, front_matter)


def split_front_matter(text: str, relpath: str) -> tuple[str, str]:
    """The YAML between the opening and closing ``---`` lines, and the body after them."""
    first_line, _, rest = text.partition("\n")
    if first_line.rstrip() != "---":
        raise ArticleError(
            relpath,
            "no front matter: the file must start with a line '---', then YAML, then '---'",
            1,
        )
    closing = _closing_line(rest)
    if closing is None:
        raise ArticleError(
            relpath, "front matter is not closed: add a line '---' after the YAML", 1
        )
    body = rest[closing.end() :].removeprefix("\n")
    return rest[: closing.start()], body.strip()


def _closing_line(text: str) -> re.Match[str] | None:
    """``_DELIMITER.search(text)``: the first line of ``text`` that is ``---``. Only a line
    starting with ``---`` can be one, and ``str.find`` finds those in a sixth of the time
    the expression takes to try every position (8 us a file of the bench collection)."""
    at = 0
    while True:
        if text.startswith("---", at) and (match := _DELIMITER.match(text, at)):
            return match
        found = text.find("\n---", at)
        if found < 0:
            return None
        at = found + 1


def load_front_matter(front_matter: str, relpath: str) -> dict[str, Any]:
    """The front matter as a mapping, loaded with a safe loader and bounded in size.

    The common shape of a front matter is read a line at a time by :func:`block_yaml.load`,
    which reads a bounded number of values (:data:`block_yaml.MOST_LINES`); anything else is
    loaded by :func:`_load_yaml`, and only then are its values counted (:func:`_check_size`:
    12 us a file of the bench collection)."""
    try:
        fields = block_yaml.load(front_matter)
        bounded = fields is not None
        if fields is None:
            fields = _load_yaml(front_matter)  # a safe loader: plain data only
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 2 if mark else None  # +1 for 1-based, +1 for the opening '---'
        problem = " ".join(filter(None, [error.context, error.problem]))
        raise ArticleError(relpath, f"invalid YAML in front matter: {problem}", line) from None
    except yaml.reader.ReaderError as error:
        line = front_matter.count("\n", 0, error.position) + 2
        raise ArticleError(
            relpath,
            f"front matter has a character YAML does not allow (#x{error.character:04x}); "
            "remove it",
            line,
        ) from None
    except (yaml.YAMLError, RecursionError) as error:
        raise ArticleError(relpath, f"invalid YAML in front matter: {error}") from None
    except (ValueError, OverflowError) as error:
        # A value that scans as YAML but that Python cannot build, such as the timestamp
        # 2022-02-30 or '!!int many'; without this, one such file stopped the whole sync.
        raise ArticleError(relpath, f"invalid value in front matter: {error}") from None
    if fields is None:
        raise ArticleError(relpath, "front matter is empty: it needs at least a title", 2)
    if not isinstance(fields, dict):
        raise ArticleError(
            relpath,
            f"front matter is a {type(fields).__name__}, not a mapping of 'key: value' lines",
            2,
        )
    if not bounded:
        _check_size(fields, relpath)
    return fields


def _load_yaml(text: str) -> Any:
    """``yaml.load(text, Loader=_Loader)``, faster. PyYAML's constructor builds each mapping
    and sequence through a generator and several checks, some 40% of loading a front matter.
    Plain mappings (keys that are scalars), sequences and text are built here; other scalars
    by PyYAML's own constructor; and a document with anything else (merge keys, other tags,
    a collection as a key, an alias inside itself) by PyYAML's constructor alone. Aliased
    nodes give one shared object, as PyYAML's do (so :func:`_check_size` counts them)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            return _plain_data(loader, node)
        except _Unusual:
            return loader.construct_document(node)
    finally:
        loader.dispose()


def _plain_data(loader: _Loader, root: Node) -> Any:
    """What PyYAML's safe constructor makes of ``root``, if plain (else :class:`_Unusual`).

    A function of its own, not a closure: a recursive closure refers to itself, and held
    the loader (which keeps the nodes it constructed) until the cyclic collector ran."""
    return _plain_node(loader, {}, root)


def _plain_node(loader: _Loader, built: dict[int, Any], node: Node) -> Any:
    """One node of :func:`_plain_data`; ``built`` has the collections built so far by
    node (aliases share them; None while one is built)."""
    kind = type(node)
    if kind is ScalarNode:
        return _scalar(loader, node)
    if id(node) in built:
        if built[id(node)] is None:  # inside itself
            raise _Unusual
        return built[id(node)]
    built[id(node)] = None
    value: Any
    if kind is MappingNode and node.tag == _MAP:
        value = {}
        for key, item in node.value:
            if type(key) is not ScalarNode or key.tag in _SPECIAL_KEYS:
                raise _Unusual
            value[_scalar(loader, key)] = (
                _scalar(loader, item)
                if type(item) is ScalarNode
                else _plain_node(loader, built, item)
            )
    elif kind is SequenceNode and node.tag == _SEQ:
        value = [_plain_node(loader, built, item) for item in node.value]
    else:
        raise _Unusual
    built[id(node)] = value
    return value


def _scalar(loader: _Loader, node: Node) -> Any:
    """A scalar's value: text as it is; a null, bool, int or float built once per text
    (:func:`block_yaml.scalar_value`); any other by PyYAML's constructor."""
    tag = node.tag
    if tag == _STR:
        return node.value
    if tag in block_yaml.IMMUTABLE_TAGS:
        return block_yaml.scalar_value(tag, node.value)
    return loader.construct_object(node, deep=True)


def _check_size(value: Any, relpath: str) -> None:
    """Count values depth-first through shared (aliased) nodes; refuse huge expansions."""
    budget = MAX_FRONT_MATTER_VALUES
    stack = [value]
    while stack:
        item = stack.pop()
        budget -= 1
        if budget < 0:
            raise ArticleError(
                relpath,
                f"front matter expands to more than {MAX_FRONT_MATTER_VALUES:,} values "
                "(YAML aliases?); write the values out plainly",
            )
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class _Fields:
    """Typed access to front matter keys; errors point at the key's line."""

    def __init__(self, data: dict[str, Any], relpath: str, source: str, where: str = "") -> None:
        self.data = data
        self.relpath = relpath
        self.source = source
        self.where = where

    def error(self, key: str, reason: str) -> ArticleError:
        match = re.search(rf"^\s*-?\s*{re.escape(key)}\s*:", self.source, re.MULTILINE)
        line = self.source.count("\n", 0, match.start()) + 2 if match else None
        return ArticleError(self.relpath, f"{self.where}{key}: {reason}", line)

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, dict | list):
            raise self.error(key, f"expected text, found a {type(value).__name__}")
        return self.printable(key, str(value)).strip()

    def printable(self, key: str, text: str) -> str:
        """``text``, unless a YAML escape put a control character in it."""
        if match := _UNPRINTABLE.search(text):
            raise self.error(
                key, f"contains the control character U+{ord(match.group()):04X}; remove it"
            )
        return text

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise self.error(key, f"expected a whole number, found {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        raise self.error(key, f"expected a whole number, found {value!r}")

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "yes", "false", "no"}:
            return value.strip().lower() in {"true", "yes"}
        raise self.error(key, f"expected true or false, found {value!r}")

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        result = []
        for item in items:
            if isinstance(item, dict | list):
                raise self.error(key, "expected a list of words or phrases")
            if item is not None and self.printable(key, str(item)).strip():
                result.append(str(item).strip())
        return tuple(dict.fromkeys(result))

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(key, f"expected a mapping, found a {type(value).__name__}")
        return value

    def records(self, key: str) -> list[dict[str, Any]]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(key, "expected a list of mappings ('- key: value' entries)")
        return value

    def datetime(self, key: str, required: bool) -> datetime | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise self.error(key, "missing; add an ISO 8601 date such as 2022-06-24T14:08:00Z")
            return None
        try:
            return to_utc(value)
        except OverflowError:  # 0001-01-01T00:00+14:00 is before the year 1 in UTC
            shown = value.isoformat() if isinstance(value, date) else value
            raise self.error(key, f"{shown!r} is out of range in UTC (years 1 to 9999)") from None
        except ValueError:
            raise self.error(
                key, f"{value!r} is not a date; use ISO 8601, such as 2022-06-24T14:08:00Z"
            ) from None


def to_utc(value: Any) -> datetime:
    """A timezone-aware UTC datetime from a YAML date, datetime or ISO 8601 string.

    Times without a zone are taken as UTC; dates without a time as midnight UTC.
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    raise ValueError(value)


def _build_article(data: dict[str, Any], body: str, relpath: str, source: str) -> Article:
    fields = _Fields(data, relpath, source)
    title = fields.text("title")
    if not title:
        raise fields.error("title", "missing or empty; every article needs a title")
    published_at = fields.datetime("publishedDateTime", required=True)
    assert published_at is not None
    return Article(
        path=relpath,
        title=title,
        published_at=published_at,
        excerpt=fields.text("excerpt"),
        body=body,
        provider=_provider(fields.mapping("provider"), fields, "provider"),
        topics=fields.texts("topics"),
        tags=fields.texts("tags"),
        category=fields.text("category"),
        type=fields.text("type", "article") or "article",
        quality=fields.integer("quality"),
        heat=fields.integer("heat"),
        published=fields.boolean("published", default=True),
        original_url=fields.text("originalUrl"),
        web_url=fields.text("webUrl"),
        images=tuple(_image(item, fields) for item in fields.records("images") if item.get("url")),
        related=tuple(_related(item, fields) for item in fields.records("related")),
    )


def _provider(data: dict[str, Any], parent: _Fields, where: str) -> Provider:
    fields = _Fields(data, parent.relpath, parent.source, f"{where}.")
    return Provider(name=fields.text("name"), domain=fields.text("domain"))


def _image(data: dict[str, Any], parent: _Fields) -> Image:
    fields = _Fields(data, parent.relpath, parent.source, "images.")
    return Image(
        url=fields.text("url"),
        width=fields.integer("width"),
        height=fields.integer("height"),
        title=fields.text("title"),
    )


def _related(data: dict[str, Any], parent: _Fields) -> RelatedArticle:
    fields = _Fields(data, parent.relpath, parent.source, "related.")
    return RelatedArticle(
        title=fields.text("title"),
        url=fields.text("webUrl") or fields.text("originalUrl") or fields.text("url"),
        excerpt=fields.text("excerpt"),
        published_at=fields.datetime("publishedDateTime", required=False),
        provider=_provider(fields.mapping("provider"), parent, "related.provider"),
        quality=fields.integer("quality"),
    )
