"""The web page and JSON API over the search service (a Flask app; ``searchidx serve``).

Read top-down: :mod:`web.app` builds the app; :mod:`web.params` turns query strings into a
:class:`~searchidx.request.SearchRequest`; :mod:`web.data` runs the search and keeps its JSON
form; :mod:`web.views`, :mod:`web.api` and :mod:`web.feed` render it as a page, JSON and Atom,
with :mod:`web.links` and :mod:`web.facets` building the links every control needs.
"""
