"""The ``searchidx`` command: each command parses its options, calls one library function and
renders what comes back. Domain errors become one-line messages and a non-zero exit.

Each command imports what it runs when it runs: ``searchidx --help`` imports no numpy or
Whoosh, and ``searchidx query`` no indexer, web server or file watcher (tests/test_cli.py).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

# main: what the console script of an install made before searchidx.console calls.
from searchidx.console import main as main
from searchidx.defaults import (
    DEFAULT_DEBOUNCE_MS,
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_MAX_BYTES,
    DEFAULT_SEARCH_TIMEOUT,
    DEFAULT_SIMILAR,
    HEAVY_AFTER_MS,
    INDEX_ENV,
    KEPT_FILES,
    MAX_SIMILAR,
    QUERY_LOG_ENV,
    RESULTS_CACHED,
    RESULTS_CACHED_BYTES,
    ROTATE_BYTES,
)
from searchidx.errors import QueryError, SearchidxError, damaged_index_message
from searchidx.facets import FILTERS, Kind
from searchidx.request import (
    SearchRequest,
    Sort,
    distinct_values,
    parse_date_bound,
    parse_half_life,
    parse_int,
    parse_sort,
)

if TYPE_CHECKING:
    from searchidx.engine import Location
    from searchidx.indexer import Progress, SyncReport

#: Exit status of ``index``/``rebuild`` when some files could not be used (the rest were).
EXIT_SKIPPED = 3


def domain_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a :class:`SearchidxError`, or a damaged index (:func:`damaged_index_message`), into
    ``Error: <message>`` on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SearchidxError as error:
            raise click.ClickException(str(error)) from None
        except Exception as error:
            if (message := damaged_index_message(error)) is None:
                raise
            raise click.ClickException(message) from None

    return wrapper


def index_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--index DIR`` or ``--index URL``, shared by every command that reads or writes an
    index: a folder is a local index, an http(s) URL an index on an OpenSearch cluster."""
    return click.option(
        "--index",
        "store",
        envvar=INDEX_ENV,
        default="index",
        show_default=True,
        show_envvar=True,
        help="Index location: a folder, or an OpenSearch URL such as "
        "https://search.example.org:9200/articles.",
        callback=_location,
    )(command)


def _location(ctx: click.Context, param: click.Parameter, value: str) -> Location:
    from searchidx import engine

    try:
        return engine.location(value)
    except SearchidxError as error:
        raise click.BadParameter(str(error), ctx, param) from None


def writer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by the commands that write the index."""
    command = click.option(
        "--wait",
        type=click.FloatRange(min=0),
        default=0,
        show_default=True,
        help="Seconds to wait for another indexer to finish before giving up.",
    )(command)
    return index_option(command)


def synonyms_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--synonyms FILE`` and ``--no-synonyms``, of the commands that build the index."""
    command = click.option(
        "--no-synonyms", is_flag=True, help="Remove the synonyms kept with the index."
    )(command)
    return click.option(
        "--synonyms",
        "synonyms_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Synonyms file to keep with the index, replacing the one it has (see the README).",
    )(command)


def _synonyms_text(synonyms_file: Path | None, no_synonyms: bool) -> str | None:
    """The checked text of the synonyms to keep with the index, "" to remove them, or None
    to keep the ones it has."""
    if synonyms_file is not None and no_synonyms:
        raise click.UsageError("give --synonyms FILE or --no-synonyms, not both")
    if no_synonyms:
        return ""
    if synonyms_file is None:
        return None
    from searchidx import synonyms

    return synonyms.read_file(synonyms_file)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="searchidx")
def cli() -> None:
    """Index a folder of news articles with Whoosh and search it."""


@cli.command()
@click.argument("content_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@writer_options
@synonyms_options
@domain_errors
def index(
    content_dir: Path | None,
    store: Location,
    wait: float,
    synonyms_file: Path | None,
    no_synonyms: bool,
) -> None:
    """Bring the index in line with CONTENT_DIR: add new, update changed, remove deleted files.

    CONTENT_DIR is remembered, so later runs need no argument, and so is the synonyms file
    (its text is kept with the index). Exit status 3 when some files were skipped (each is
    listed with the reason); the others are indexed.
    """
    from searchidx import engine
    from searchidx.write_options import WriteOptions

    text = _synonyms_text(synonyms_file, no_synonyms)
    with progress_bar("Indexing") as progress:
        report = engine.sync(store, content_dir, WriteOptions(progress, wait, text))
    _print_report(report)


@cli.command()
@click.argument("content_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@writer_options
@synonyms_options
@domain_errors
def rebuild(
    content_dir: Path | None,
    store: Location,
    wait: float,
    synonyms_file: Path | None,
    no_synonyms: bool,
) -> None:
    """Build a fresh index beside the live one and swap it in atomically.

    Readers (a running web page) keep answering from the old index until the new one is
    complete.
    """
    from searchidx import engine
    from searchidx.write_options import WriteOptions

    text = _synonyms_text(synonyms_file, no_synonyms)
    with progress_bar("Rebuilding") as progress:
        report = engine.rebuild(store, content_dir, WriteOptions(progress, wait, text))
    _print_report(report)


@cli.command()
@index_option
@domain_errors
def status(store: Location) -> None:
    """Show the index: documents, content folder, last sync, size and skipped files."""
    from searchidx import cluster_sync
    from searchidx.store import IndexStore

    if isinstance(store, IndexStore):
        meta = store.read_meta()
        size = sum(path.stat().st_size for path in store.live_dir().iterdir() if path.is_file())
        click.echo(f"index:          {store.location}/ (generation {store.generation()})")
    else:
        found = cluster_sync.status(store)
        meta, size = found.meta, found.size_bytes
        click.echo(f"index:          {store.location} (OpenSearch index {found.physical_index})")
    click.echo(f"documents:      {meta.documents:,}")
    click.echo(f"content folder: {meta.content_dir}")
    click.echo(f"last sync:      {meta.last_sync}")
    click.echo(f"index size:     {size / 1024 / 1024:.1f} MiB")
    click.echo(f"skipped files:  {len(meta.skipped)}")
    for problem in meta.skipped:
        click.echo(f"  {problem}")


class LibraryValue(click.ParamType):
    """An option read by the library's parser of its value, the one the web reads the URL's
    parameter with: the same text means the same thing, and fails with the same message."""

    def parse(self, text: str, parameter: str) -> Any:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # a default, already parsed
            return value
        try:
            return self.parse(value, param.name if param and param.name else self.name)
        except QueryError as error:
            self.fail(str(error), param, ctx)


class DateBound(LibraryValue):
    """A date or date-time option; ``end=True`` makes a bare day, month or year inclusive."""

    name = "date"

    def __init__(self, end: bool) -> None:
        self.end = end

    def parse(self, text: str, parameter: str) -> datetime:
        return parse_date_bound(text, end=self.end, parameter=parameter)


class HalfLife(LibraryValue):
    """A number of days, as the web's ``half_life`` parameter reads it."""

    name = "days"

    def parse(self, text: str, parameter: str) -> float:
        return parse_half_life(text, parameter)


class WholeNumber(LibraryValue):
    """ASCII digits, as the web's ``page`` or ``min_quality`` reads them (not ``1_000``)."""

    name = "integer"

    def parse(self, text: str, parameter: str) -> int:
        return parse_int(text, parameter)


class SortName(LibraryValue):
    """One of the sorts, as the web's ``sort`` reads it."""

    name = "sort"

    def parse(self, text: str, parameter: str) -> Sort:
        return parse_sort(text)

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "[" + "|".join(Sort) + "]"


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One option per facet a search can filter on (``--topic``, repeatable; a pair of flags
    for a true-or-false facet: ``--published/--unpublished``), passed to the command as one
    ``filters`` mapping with its values read as the web reads a URL's."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        filters: dict[str, tuple[str, ...]] = {}
        for facet in FILTERS:
            given = kwargs.pop(facet.name)
            if facet.kind is Kind.BOOLEAN:
                given = () if given is None else (str(given).lower(),)
            if values := distinct_values(given):
                filters[facet.name] = values
        return command(*args, filters=filters, **kwargs)

    for facet in reversed(FILTERS):  # the first one applied last, so it is listed first
        if facet.kind is Kind.BOOLEAN:
            option = click.option(f"--{facet.name}/--un{facet.name}", default=None, help=facet.help)
        else:
            option = click.option(f"--{facet.name}", multiple=True, help=facet.help)
        wrapper = option(wrapper)
    return wrapper


@cli.command()
@click.argument("text", required=False, default="")
@filter_options
@click.option("--from", "date_from", type=DateBound(end=False), help="Published on or after.")
@click.option("--to", "date_to", type=DateBound(end=True), help="Published on or before.")
@click.option("--min-quality", type=WholeNumber())
@click.option("--max-quality", type=WholeNumber())
@click.option(
    "--sort",
    type=SortName(),
    help="Default: best with text (relevance, freshness and quality), newest without.",
)
@click.option(
    "--half-life",
    type=HalfLife(),
    default=DEFAULT_HALF_LIFE_DAYS,
    show_default=True,
    help="Days in which the best sort's freshness bonus halves.",
)
@click.option("--explain", is_flag=True, help="Show the parts of each hit's score.")
@click.option("--page", type=WholeNumber(), default=1, show_default=True)
@click.option(
    "--limit", type=WholeNumber(), default=10, show_default=True, help="Results per page."
)
@click.option("--facets", "show_facets", is_flag=True, help="Show facet counts.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.option(
    "--strict",
    is_flag=True,
    help="Fail on an unclosed quote or bracket, an unknown field or a value its field cannot "
    "take (default: read as words, or left out, with a note).",
)
@index_option
@domain_errors
def query(
    text: str,
    filters: dict[str, tuple[str, ...]],
    date_from: datetime | None,
    date_to: datetime | None,
    min_quality: int | None,
    max_quality: int | None,
    sort: Sort | None,
    half_life: float,
    explain: bool,
    page: int,
    limit: int,
    show_facets: bool,
    as_json: bool,
    strict: bool,
    store: Location,
) -> None:
    """Search the index for TEXT (words AND-ed; OR, NOT, -word, "phrases", field:value, ...).

    Without TEXT, browse everything, newest first.
    """
    from searchidx import engine, querylang
    from searchidx.terminal import render_result

    if strict:
        querylang.check_syntax(text)
    request = SearchRequest(
        text=text,
        filters=filters,
        date_from=date_from,
        date_to=date_to,
        min_quality=min_quality,
        max_quality=max_quality,
        sort=sort,
        half_life_days=half_life,
        explain=explain,
        page=page,
        per_page=limit,
        facets=show_facets or as_json,
    )
    service = engine.search_service(store, search_timeout=None, prepare=False)
    try:
        result = service.search(request)
    finally:
        service.close()
    _print_result(result.to_dict() if as_json else render_result(result, show_facets))


@cli.command("similar")
@click.argument("path")
@click.option(
    "--limit",
    type=WholeNumber(),
    default=DEFAULT_SIMILAR,
    show_default=True,
    help=f"Similar articles to show (1 to {MAX_SIMILAR}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@index_option
@domain_errors
def similar_command(path: str, limit: int, as_json: bool, store: Location) -> None:
    """Articles similar to the one at PATH (as search hits give it: relative to the content
    folder): the rest of its story, by shared key terms, date and topics.
    """
    from searchidx import engine
    from searchidx.similar import SimilarRequest
    from searchidx.terminal import render_similar

    service = engine.search_service(store, search_timeout=None, prepare=False)
    try:
        result = service.similar(SimilarRequest(path, limit))
    finally:
        service.close()
    _print_result(result.to_dict() if as_json else render_similar(result))


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--count", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same files.")
@click.option(
    "--stories",
    type=click.FloatRange(0, 1),
    default=0,
    show_default=True,
    help="Share of the articles that are several outlets' coverage of one story, listed "
    "under each other's related.",
)
def sample(folder: Path, count: int, seed: int, stories: float) -> None:
    """Write a generated sample collection of COUNT articles (plus the real seed) to FOLDER."""
    from searchidx.sample import write_sample

    written = write_sample(folder, count, seed, stories=stories)
    click.echo(f"wrote {written:,} articles to {folder}/")


def _cores() -> int:
    """The cores this process may run on: a container's or ``taskset``'s share, not the
    machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every interface).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Threads answering requests.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=_cores,
    show_default="one per core",
    help="Processes answering requests, each with its own searcher: more than one per core "
    "does not help.",
)
@click.option(
    "--cached-results",
    type=click.IntRange(min=0),
    default=RESULTS_CACHED,
    show_default=True,
    help="Search results kept for repeated requests, per index state and worker (0: none), "
    f"at most some {RESULTS_CACHED_BYTES // 2**20} MiB of them.",
)
@click.option(
    "--query-log",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=QUERY_LOG_ENV,
    show_envvar=True,
    help="Append each search (query, filters, sort, hits, time; no address) to this file; "
    "'searchidx stats' summarises it.",
)
@click.option(
    "--query-log-max-mb",
    type=click.IntRange(min=1),
    default=ROTATE_BYTES // 2**20,
    show_default=True,
    help="Rotate the query log past this size, keeping "
    f"{KEPT_FILES} older files (FILE.1 the newest).",
)
@click.option(
    "--search-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_SEARCH_TIMEOUT,
    show_default=True,
    help="Seconds a search may take; a longer one stops and answers an error (503).",
)
@click.option(
    "--heavy-after-ms",
    type=click.FloatRange(min=0),
    default=HEAVY_AFTER_MS,
    show_default=True,
    help="CPU milliseconds a search may use in a worker; a heavier one, like a broad one "
    "(wildcards, fuzzy words, more than 8 words), runs in the server's one process for heavy "
    "searches, one at a time, yielding to the workers (0: no such process).",
)
@click.option(
    "--watch",
    "watch_folder",
    is_flag=True,
    help="Also sync the index when its content folder changes (as 'searchidx watch').",
)
@index_option
@domain_errors
def serve(
    host: str,
    port: int,
    threads: int,
    workers: int,
    cached_results: int,
    query_log: Path | None,
    query_log_max_mb: int,
    search_timeout: float,
    heavy_after_ms: float,
    watch_folder: bool,
    store: Location,
) -> None:
    """Serve the search page and JSON API with waitress, until Ctrl-C.

    The page picks up an index or rebuild run by another process within a second, without a
    restart; with no index yet it says how to build one.
    """
    import logging
    import threading

    from searchidx import engine
    from searchidx.querylog import QueryLog
    from searchidx.store import IndexStore
    from searchidx.web import server
    from searchidx.web.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if isinstance(store, IndexStore) and not store.exists():
        click.echo(
            f"note: no index at {store.location}/ yet; build one with "
            "'searchidx index CONTENT_DIR'",
            err=True,
        )
    log = None if query_log is None else QueryLog(query_log, max_bytes=query_log_max_mb * 2**20)
    if log is not None:
        log.check()
    stop = threading.Event()

    def ready(url: str) -> None:
        """The socket listens (and the workers are started: no thread crosses a fork)."""
        if watch_folder:
            threading.Thread(target=keep_in_sync, name="searchidx-watch", daemon=True).start()
        where = f"{store.location}/" if isinstance(store, IndexStore) else store.location
        click.echo(
            f"serving {where} at {url} with {workers} worker process(es) (Ctrl-C to stop)",
            err=True,
        )

    def keep_in_sync() -> None:
        from searchidx.watch import watch

        try:
            watch(store, stop_event=stop)
        except SearchidxError as error:  # the page goes on serving the last index
            click.echo(f"Error: stopped watching the content folder: {error}", err=True)

    lane = None
    if isinstance(store, IndexStore) and heavy_after_ms > 0:
        from searchidx.web.lane import HeavyLane

        def make_lane_service() -> Any:
            return engine.search_service(store, cached_results, search_timeout)

        # Threads a worker lets wait for the lane: one stays free for ordinary requests.
        lane = HeavyLane(make_lane_service, heavy_after_ms / 1000, waiting=max(1, threads - 1))

    def make_app() -> Any:
        service = engine.search_service(store, cached_results, search_timeout, lane=lane)
        return create_app(search_service=service, query_log=log)

    try:
        server.serve(make_app, host, port, threads, workers, ready, lane)
    finally:
        stop.set()


class LogMoment(DateBound):
    """A date, as ``--from``/``--to`` take it, or a time ago: ``30m``, ``12h``, ``7d``, ``2w``."""

    def parse(self, text: str, parameter: str) -> datetime:
        from searchidx.querylog import parse_since

        return parse_since(text, datetime.now(UTC), end=self.end)


@cli.command()
@click.argument(
    "log_file",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=QUERY_LOG_ENV,
)
@click.option(
    "--since",
    type=LogMoment(end=False),
    help="Only searches from then on: a date (2026-11-01) or a time ago (30m, 12h, 7d, 2w).",
)
@click.option(
    "--until", type=LogMoment(end=True), help="Only searches until then (a date is inclusive)."
)
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@domain_errors
def stats(
    log_file: Path | None,
    since: datetime | None,
    until: datetime | None,
    top: int,
    as_json: bool,
) -> None:
    """What readers searched for, in the query log LOG_FILE written by 'serve --query-log'
    (and its rotated files): the most frequent searches, the most frequent ones that found
    nothing, and search-time percentiles.
    """
    from searchidx.querylog import read_log, summarise
    from searchidx.terminal import render_stats

    if log_file is None:
        raise click.UsageError(f"name the query log: searchidx stats FILE (or set {QUERY_LOG_ENV})")
    searches, unreadable = read_log(log_file)
    summary = summarise(searches, since=since, until=until, top=top, unreadable=unreadable)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return
    for line in render_stats(summary):
        click.echo(line)


@cli.command("watch")
@click.argument("content_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--debounce",
    "debounce_ms",
    type=click.IntRange(min=1),
    default=DEFAULT_DEBOUNCE_MS,
    show_default=True,
    help="Milliseconds without changes that end a burst; each burst is one sync.",
)
@writer_options
@domain_errors
def watch_command(content_dir: Path | None, debounce_ms: int, store: Location, wait: float) -> None:
    """Keep the index in line with CONTENT_DIR while its files are added, changed, moved or
    deleted, logging one line per sync, until Ctrl-C.

    --wait applies to the first sync; later ones wait for another writer as long as it takes.
    """
    from searchidx.watch import watch

    with _log_to_stderr("searchidx.watch"):
        try:
            watch(store, content_dir, debounce_ms=debounce_ms, wait=wait)
        except KeyboardInterrupt:
            click.echo("stopped watching", err=True)


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["elasticsearch"]),
    default="elasticsearch",
    show_default=True,
    help="Target engine; OpenSearch loads the same files.",
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1024),
    default=DEFAULT_MAX_BYTES,
    show_default=True,
    help="Largest bulk file; files are split between documents.",
)
@click.option("--force", is_flag=True, help="Replace a previous export in OUT_DIR.")
@index_option
@domain_errors
def export(out_dir: Path, export_format: str, max_bytes: int, force: bool, store: Location) -> None:
    """Write the index to OUT_DIR for Elasticsearch or OpenSearch: the index mapping, the
    articles as bulk NDJSON files and a manifest (see the README to load them with curl).
    """
    from searchidx.export import MANIFEST_FILE, MAPPING_FILE, export_cluster, export_elasticsearch
    from searchidx.store import IndexStore

    if isinstance(store, IndexStore):
        report = export_elasticsearch(store, out_dir, max_bytes=max_bytes, force=force)
    else:
        report = export_cluster(store, out_dir, max_bytes=max_bytes, force=force)
    size = sum(file.bytes for file in report.files)
    click.echo(
        f"exported {report.documents:,} articles to {out_dir}/ in {report.seconds:.1f}s: "
        f"{MAPPING_FILE}, {len(report.files):,} bulk file(s) of {size:,} bytes, {MANIFEST_FILE}"
    )
    if report.bodies_cut:
        click.echo(
            f"note: {len(report.bodies_cut):,} article bodies are exported as stored (cut "
            "short): their files changed since the last sync; run 'searchidx index' and "
            "export again",
            err=True,
        )


def _print_result(shown: dict[str, Any] | Iterable[str]) -> None:
    """A result's JSON form (a dict) or its terminal lines, in colour on a terminal unless
    ``NO_COLOR`` is set."""
    if isinstance(shown, dict):
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
        return
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    for line in shown:
        click.echo(line, color=color)


@contextmanager
def _log_to_stderr(logger_name: str) -> Iterator[None]:
    """Show a library's log lines, timestamped, on stderr while a long-running command runs."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextmanager
def progress_bar(label: str) -> Iterator[Progress | None]:
    """A progress bar on a terminal (stderr); nothing when output is piped."""
    if not sys.stderr.isatty():
        yield None
        return
    bar: Any = None

    def advance(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label=label, file=sys.stderr).__enter__()
        bar.update(done - bar.pos)

    try:
        yield advance
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def _print_report(report: SyncReport) -> None:
    verb = "rebuilt" if report.rebuilt else "synced"
    click.echo(
        f"{verb} {report.content_dir} in {report.seconds:.1f}s: {report.added:,} added, "
        f"{report.updated:,} updated, {report.removed:,} removed, "
        f"{report.unchanged:,} unchanged, {len(report.skipped):,} skipped; "
        f"{report.documents:,} documents"
    )
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if report.skipped:
        click.echo(f"skipped {len(report.skipped)} file(s):", err=True)
        for problem in report.skipped:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_SKIPPED)


if __name__ == "__main__":
    main()
