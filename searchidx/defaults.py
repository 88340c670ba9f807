"""The defaults of what the ``searchidx`` command lets a user set, in a module that imports
nothing: the command's options show them, and ``searchidx --help`` must not pay for numpy,
Whoosh or watchfiles (some 150 ms of start-up) to print them. The modules they configure
import them from here.
"""

#: Environment variable naming the index location (``--index``).
INDEX_ENV = "SEARCHIDX_INDEX"
#: Days after which an article's freshness bonus has halved (``--half-life``/``half_life``).
DEFAULT_HALF_LIFE_DAYS = 30.0
#: Shortest half-life accepted: a quarter of an hour, beyond which only the newest counts.
MIN_HALF_LIFE_DAYS = 0.01
#: Longest half-life accepted: a century, beyond which freshness no longer differs.
MAX_HALF_LIFE_DAYS = 36_500.0
#: Search results kept per snapshot: a page reloaded, paged back to or shared, and the front
#: page most of all, cost one search per index change.
RESULTS_CACHED = 512
#: ... and at most about this many bytes of them (see ``SearchResult.kept_bytes``): 512 of the
#: bench's results weigh some 24 MB with their articles, 512 pages of 100 hits with 200 values
#: a facet some ten times that, more than a worker's whole budget (300 MB at 100,000 articles).
RESULTS_CACHED_BYTES = 32 * 1024 * 1024
#: Seconds a web search may take before it stops (``serve --search-timeout``).
DEFAULT_SEARCH_TIMEOUT = 1.0
#: CPU milliseconds a web search may use in a worker before it goes on in the server's lane
#: for heavy searches (``serve --heavy-after-ms``; :mod:`searchidx.web.lane`): above what the
#: benchmark's ordinary searches use at 100,000 articles (at most about 210 ms, phrases of
#: common words).
HEAVY_AFTER_MS = 250.0
#: Quiet time that ends a burst of changes: events closer together than this are one sync.
DEFAULT_DEBOUNCE_MS = 200
#: Environment variable naming the query log, for ``serve --query-log`` and ``stats``.
QUERY_LOG_ENV = "SEARCHIDX_QUERY_LOG"
#: A query log is rotated past this size, keeping this many older files.
ROTATE_BYTES = 16 * 1024 * 1024
KEPT_FILES = 5
#: Bulk files stay below this many bytes; Elasticsearch refuses requests over 100 MB.
DEFAULT_MAX_BYTES = 10_000_000
#: Similar articles shown, and the most one request may ask for (``similar --limit``).
DEFAULT_SIMILAR = 10
MAX_SIMILAR = 100
