"""The web page and JSON API over the search service (a Flask app; ``searchidx serve``).

Read top-down: :mod:`searchidx.web.app` builds the app; :mod:`searchidx.web.params` turns
query strings into a :class:`~searchidx.request.SearchRequest`; :mod:`searchidx.web.data` runs
the search and keeps its JSON form; :mod:`searchidx.web.views`, :mod:`searchidx.web.api` and
:mod:`searchidx.web.feed` render it as a page, JSON and Atom, with :mod:`searchidx.web.links` and
:mod:`searchidx.web.facets` building the links every control needs.
"""
