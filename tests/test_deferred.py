"""The modules a one-shot search does not import (searchidx.deferred): each stand-in gives what
the real module gives, importing it when first used. Each test runs in a fresh interpreter,
whose modules are its own."""

from __future__ import annotations

import hashlib
import importlib.util
import random
import subprocess
import sys

import pytest

from searchidx.deferred import UNUSED_BY_A_SEARCH

_PROCESS = """
import sys
from searchidx.deferred import StandIn, defer_unused_modules
defer_unused_modules()
import numpy, whoosh.analysis, whoosh.filedb.compound, whoosh.index, whoosh.query
def standing_in():
    return sorted(name for name, module in sys.modules.items() if isinstance(module, StandIn))
print(*standing_in())
"""


def _run(script: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _PROCESS + script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _standing_in(*but: str) -> str:
    return " ".join(sorted(set(UNUSED_BY_A_SEARCH) - set(but)))


def test_deferred_modules_are_not_imported_with_numpy_and_whoosh():
    assert _run("") == [_standing_in()]


def test_deferred_function_imports_its_module_and_answers_as_it_does():
    found = _run(
        "from whoosh.query.terms import variations\n"  # bound to the stand-in's function
        "print(sorted(variations('rendering')))\n"
        "print(*standing_in())\n"
        "print(sorted(sys.modules['whoosh.lang.morph_en'].variations('rendering')))\n"
    )
    assert "'render'" in found[1] and found[1] == found[3]
    assert found[2] == _standing_in("whoosh.lang.morph_en")


def test_deferred_module_read_by_another_name_is_imported():
    found = _run(
        "filter = whoosh.analysis.RegexTokenizer() | whoosh.analysis.DoubleMetaphoneFilter()\n"
        "print([token.text for token in filter('Smith')])\n"
        "print(sys.modules['whoosh.lang.dmetaphone'].vowels == frozenset('AEIOUY'))\n"
        "import random\n"
        "print(random.Random(3).random())\n"
        "print(*standing_in())\n"
    )
    assert found[1:4] == ["['SM0', 'XMT']", "True", str(random.Random(3).random())]
    assert found[4] == _standing_in("whoosh.lang.dmetaphone", "random")


def test_deferred_numpy_linear_algebra_answers_when_used():
    found = _run(
        "print(numpy.polyfit([0, 1, 2], [1, 3, 5], 1).round(6).tolist())\n"  # lstsq, by name
        "print(numpy.linalg.norm([3.0, 4.0]))\n"
        "print(numpy.matrix([[2.0, 0.0], [0.0, 4.0]]).I.tolist())\n"
        "print(*standing_in())\n"
    )
    assert found[1:4] == ["[2.0, 1.0]", "5.0", "[[0.5, 0.0], [0.0, 0.25]]"]
    assert found[4] == _standing_in("numpy.linalg")


@pytest.mark.skipif(importlib.util.find_spec("_md5") is None, reason="md5 from OpenSSL alone")
def test_deferred_search_hashes_with_pythons_own_md5_as_with_openssls():
    found = _run(
        "import hashlib\n"
        "print(hashlib.md5(b'searchidx', usedforsecurity=False).hexdigest())\n"
        "print(sys.modules['_hashlib'])\n"
    )
    assert found[1:] == [hashlib.md5(b"searchidx").hexdigest(), "None"]
