"""Modules that a search never runs, imported only when something uses them.

numpy's, Whoosh's and click's packages import all of their parts, and with them modules for
features a search does not use: ``whoosh.query`` imports the English morphology tables
(``whoosh.lang.morph_en``, for its ``Variations`` query alone: 4.4 ms of compiled patterns, a
fifth of Whoosh's import), ``whoosh.analysis`` the double metaphone (``whoosh.lang.dmetaphone``,
for its ``DoubleMetaphoneFilter``), Whoosh's utilities ``random`` and ``calendar``, its
compound files ``shutil`` (to copy files into one, as a writer does) and with it the archive
formats (``bz2``, ``lzma``), its highlighter
``html`` (escaping, and the tables of named characters for unescaping: the terminal's output
has no HTML), numpy ``ctypes`` (for an array's ``.ctypes``), its linear algebra
(``numpy.linalg``, for its matrices' and polynomials' functions; with it numpy's type
annotations, ``numpy._typing``: together a quarter of numpy's import) and the docstrings of
its compiled functions (``numpy._core._add_newdocs``: 200 kB of text, set one by one) and its
deprecation notes' ``textwrap`` (click's help text wraps with it too: a help or usage error
imports it), click ``inspect`` and with it the source lines of tracebacks (``linecache``) and
the tokenizer of source (``tokenize``). A one-shot search
(:mod:`searchidx.console`) puts a stand-in for each in ``sys.modules`` before numpy and Whoosh
are imported: the functions other modules import from it by name import the real module when
first called, and so does any other name read from it; it is then the real one in
``sys.modules``. Together some 20 ms of a search's start-up.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any

#: Module -> the functions other modules import from it by name.
UNUSED_BY_A_SEARCH: dict[str, tuple[str, ...]] = {
    "whoosh.lang.morph_en": ("variations",),
    "whoosh.lang.dmetaphone": ("double_metaphone",),
    "random": (),
    "calendar": (),
    "bz2": (),
    "lzma": (),
    "html": ("escape",),
    "ctypes": (),
    "numpy.linalg": ("matrix_power", "eigvals", "inv", "lstsq"),
    "numpy._core._add_newdocs": (),
    "numpy._core._add_newdocs_scalars": (),
    "linecache": (),
    "tokenize": (),
    "textwrap": (),
    "shutil": ("copyfileobj",),
}


class StandIn(types.ModuleType):
    """A module not imported yet: reading any of its names from it imports it (not a special
    name such as ``__path__``, which the import system looks for in every module it hands
    out: the stand-in has none)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(self.real(), name)

    def real(self) -> types.ModuleType:
        """The module itself, imported in the stand-in's place the first time."""
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return importlib.import_module(self.__name__)


def defer_unused_modules() -> None:
    """Stand-ins for :data:`UNUSED_BY_A_SEARCH` not imported yet (call before numpy and
    Whoosh are), and ``hashlib`` without OpenSSL's hashes.

    ``hashlib`` loads OpenSSL's library for its hashes (``_hashlib``, 1.5 ms) and, where it
    cannot, gives its own built-in ones, as in a Python built without OpenSSL: a search's one
    hash is md5 (Whoosh's term index hashes each word looked up), the same digest either way.
    Not where Python has no built-in md5 (some distributions build it from OpenSSL alone)."""
    if "_hashlib" not in sys.modules and importlib.util.find_spec("_md5") is not None:
        # hashlib's import of it then fails, which hashlib is written for
        sys.modules["_hashlib"] = None  # type: ignore[assignment]
    for name, functions in UNUSED_BY_A_SEARCH.items():
        if name in sys.modules:
            continue
        stand_in = StandIn(name)
        for function in functions:
            setattr(stand_in, function, _forwarding(stand_in, function))
        sys.modules[name] = stand_in


def _forwarding(stand_in: StandIn, function: str) -> Callable[..., Any]:
    def forward(*args: Any, **kwargs: Any) -> Any:
        return getattr(stand_in.real(), function)(*args, **kwargs)

    forward.__name__ = function
    return forward
