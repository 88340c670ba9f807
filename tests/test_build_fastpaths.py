"""The fast build paths index exactly what the plain ones do.

Text fields are analysed in one pass (``schema.Text``) and the stored record is written out by
hand (``schema._record``). Each is checked against the plain path.
"""

from __future__ import annotations

import json
import random

import pytest
from whoosh import fields
from whoosh.analysis import StemmingAnalyzer

from searchidx.content import scan_content
from searchidx.parsing import read_article
from searchidx.schema import ANALYZER, STORED_BODY_CHARS, Text, _record
from tests.conftest import POWERAPPS


def texts() -> list[str]:
    rng = random.Random(3)
    alphabet = "abcdeé .-*_\n\tİ1Σ"
    words = ["the", "a", "of", "x", "chip", "production", "is", "in", "regulations", "U.S."]
    found = ["", "a", "the the a of", "İstanbul ÉCOLE straße naïve café 北京", "x*y foo.bar. 3.14"]
    for _ in range(2000):
        found.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))))
        found.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))))
    for path in sorted(scan_content(POWERAPPS))[:150]:
        article = read_article(POWERAPPS, path)
        found += [article.title, article.excerpt, article.body]
    return found


@pytest.mark.parametrize("phrase", [True, False])
@pytest.mark.parametrize("analyzer", [ANALYZER, StemmingAnalyzer()])
def test_text_fields_index_what_whoosh_text_indexes(phrase: bool, analyzer):
    mine = Text(analyzer=analyzer, phrase=phrase)
    whooshs = fields.TEXT(analyzer=analyzer, phrase=phrase)
    for text in texts():
        assert sorted(mine.index(text)) == sorted(whooshs.index(text)), text


def test_the_stored_record_is_the_articles_dict():
    for path in sorted(scan_content(POWERAPPS)):
        article = read_article(POWERAPPS, path)
        expected = {**article.to_dict(), "body": article.body[:STORED_BODY_CHARS]}
        assert json.dumps(_record(article)) == json.dumps(expected)
