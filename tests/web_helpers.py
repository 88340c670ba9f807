"""Helpers for the web tests: a small HTML tree (the stdlib parser, no new dependency) and a
validator for the subset of OpenAPI 3.0 schemas that ``web/openapi.json`` uses."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

#: The installed command, as a reader runs it (another process than the tests).
SEARCHIDX = str(Path(sys.executable).with_name("searchidx"))

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = None

    @property
    def text(self) -> str:
        """The text content, whitespace collapsed (as a reader sees it)."""
        parts: list[str] = []

        def walk(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return " ".join("".join(parts).split())

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        """Descendants with this tag, class and attribute values (``attrs`` use ``_`` for ``-``)."""
        wanted = {key.rstrip("_").replace("_", "-"): value for key, value in attrs.items()}
        return [
            node
            for node in self.iter()
            if (tag is None or node.tag == tag)
            and (cls is None or cls in node.classes())
            and all(node.attrs.get(key) == value for key, value in wanted.items())
        ]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag} class={cls} {attrs}>"
        return found[0]

    def by_id(self, id_: str) -> Node:
        return self.find(id=id_)

    def ancestor(self, tag: str) -> Node | None:
        node = self.parent
        while node is not None and node.tag != tag:
            node = node.parent
        return node


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {key: value or "" for key, value in attrs}, parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {key: value or "" for key, value in attrs}, parent=self.current)
        self.current.children.append(node)

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


# OpenAPI 3.0 schema subset -----------------------------------------------------------------


def validate(instance: Any, schema: dict[str, Any], document: dict[str, Any], path: str = "$"):
    """Raise AssertionError where ``instance`` breaks ``schema`` (refs resolved in ``document``).

    Covers what web/openapi.json uses: $ref, type, nullable, enum, properties, required,
    additionalProperties: false, items, minItems/maxItems, minimum/maximum, oneOf.
    """
    if "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = target
    if instance is None:
        assert schema.get("nullable"), f"{path}: null where {schema.get('type')} is required"
        return
    if "oneOf" in schema:
        matches = 0
        for option in schema["oneOf"]:
            try:
                validate(instance, option, document, path)
                matches += 1
            except AssertionError:
                pass
        assert matches == 1, f"{path}: matches {matches} of oneOf"
        return
    types: dict[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
    }
    kind = schema.get("type")
    if kind:
        assert isinstance(instance, types[kind]), f"{path}: {instance!r} is not {kind}"
        if kind in ("integer", "number"):
            assert not isinstance(instance, bool), f"{path}: boolean where {kind} is required"
    if "enum" in schema:
        assert instance in schema["enum"], f"{path}: {instance!r} not in {schema['enum']}"
    if "minimum" in schema:
        assert instance >= schema["minimum"], f"{path}: {instance} < {schema['minimum']}"
    if "maximum" in schema:
        assert instance <= schema["maximum"], f"{path}: {instance} > {schema['maximum']}"
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            assert name in instance, f"{path}: missing {name!r}"
        if schema.get("additionalProperties") is False:
            extra = set(instance) - set(properties)
            assert not extra, f"{path}: undocumented properties {sorted(extra)}"
        for name, value in instance.items():
            if name in properties:
                validate(value, properties[name], document, f"{path}.{name}")
    if isinstance(instance, list):
        assert len(instance) >= schema.get("minItems", 0), f"{path}: too few items"
        assert len(instance) <= schema.get("maxItems", len(instance)), f"{path}: too many items"
        for number, item in enumerate(instance):
            validate(item, schema.get("items", {}), document, f"{path}[{number}]")


# searchidx serve -----------------------------------------------------------------------------

#: The search budget of the tests' apps and servers: the default (1 s) is wall-clock time, and a
#: CI machine once stalled an 8 ms search past it; tests of the budget build impatient services.
STALL_PROOF_TIMEOUT = 30.0


@contextlib.contextmanager
def serving(index: Path, *options: str) -> Iterator[str]:
    """Run ``searchidx serve --port 0`` (waitress) on ``index``, with the stall-proof search
    budget unless ``options`` give one; yields its base URL."""
    command = [SEARCHIDX, "serve", "--port", "0", "--index", str(index)]
    command += ["--search-timeout", str(STALL_PROOF_TIMEOUT), *options]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        line = ""
        while "serving" not in line:
            line = process.stderr.readline()
            assert line or process.poll() is None, "searchidx serve exited"
            assert time.monotonic() < deadline, "searchidx serve did not start"
        match = re.search(r"http://[\d.]+:\d+/", line)
        assert match, line
        # Keep reading: waitress logs its queue depth under load, and a full pipe would
        # block the server's logging, and so every thread of the server.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield match.group(0)
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
