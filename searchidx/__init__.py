"""searchidx: a search engine for a folder of news articles, built on Whoosh.

Read top-down: :mod:`searchidx.parsing` turns files into :mod:`searchidx.articles` records,
:mod:`searchidx.indexer` writes them into the index kept by :mod:`searchidx.store`, and the
search service answers typed requests; :mod:`searchidx.cli` and :mod:`searchidx.web` render it.
"""
