"""An index location on an OpenSearch cluster: ``https://search.example.org:9200/articles``.

The URL names the cluster and the index *alias* searchidx reads and writes through: a rebuild
makes a new physical index and moves the alias to it in one step (see
:mod:`searchidx.cluster_sync`). Nothing secret is ever on the command line or in the URL:

* credentials come from :data:`USER_ENV` / :data:`PASSWORD_ENV`, else from the netrc entry of
  the cluster's host (``~/.netrc``, or the file ``NETRC`` names);
* TLS certificates are verified unless :data:`VERIFY_TLS_ENV` is ``false`` (a test cluster
  with a self-signed certificate); :data:`CA_CERTS_ENV` names a CA bundle instead.

Every call to the cluster goes through :func:`cluster_errors`, which turns the client's
exceptions into one :class:`ClusterError` line naming the URL and the cause.
"""

from __future__ import annotations

import contextlib
import logging
import netrc
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from searchidx.errors import IndexMissingError, SearchidxError

USER_ENV = "SEARCHIDX_OPENSEARCH_USER"
PASSWORD_ENV = "SEARCHIDX_OPENSEARCH_PASSWORD"
VERIFY_TLS_ENV = "SEARCHIDX_OPENSEARCH_VERIFY_TLS"
CA_CERTS_ENV = "SEARCHIDX_OPENSEARCH_CA_CERTS"
#: Seconds a request may take (a bulk request of a few MB on a busy cluster included).
REQUEST_SECONDS = 60

#: What OpenSearch accepts as an index or alias name (lowercase, no path characters).
_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,200}")


class ClusterError(SearchidxError):
    """The cluster cannot be reached, refuses us, or refuses what we send."""


class ClusterIndexMissing(IndexMissingError, ClusterError):
    """The cluster answers, and has no index by the location's name (the web says how to
    build one, as for a missing local index)."""


@dataclass(frozen=True)
class ClusterIndex:
    """An alias on a cluster: where searchidx keeps one collection."""

    #: The cluster's base URL (scheme, host, port), as the client connects to it.
    base_url: str
    #: The alias searched and synced; physical indexes are ``<alias>-<stamp>``.
    alias: str

    @classmethod
    def parse(cls, location: str) -> ClusterIndex:
        """``https://host:9200/articles`` -> the cluster and the alias, or a clear error."""
        try:
            parts = urlsplit(location)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as error:
            raise ClusterError(f"{location} is not a usable OpenSearch URL: {error}") from None
        if parts.username or parts.password:
            raise ClusterError(
                f"{_without_userinfo(location)}: credentials do not belong in the index URL; "
                f"set {USER_ENV} and {PASSWORD_ENV}, or give the host a netrc entry"
            )
        alias = parts.path.strip("/")
        if not parts.hostname or not _INDEX_NAME.fullmatch(alias) or parts.query:
            raise ClusterError(
                f"{location} does not name an index: give the cluster and an index name in "
                "lowercase, such as https://search.example.org:9200/articles"
            )
        return cls(f"{parts.scheme.lower()}://{parts.netloc}", alias)

    @property
    def location(self) -> str:
        """The URL as the user gave it (without credentials): for messages."""
        return f"{self.base_url}/{self.alias}"

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    def __str__(self) -> str:
        return self.location

    def client(self) -> Any:
        """An ``opensearchpy.OpenSearch`` client for the cluster, with the credentials and TLS
        settings of the environment."""
        try:
            from opensearchpy import OpenSearch
        except ImportError:
            raise ClusterError(
                f"{self.location} is an OpenSearch index, and the OpenSearch client is not "
                "installed: pip install 'searchidx[opensearch]'"
            ) from None
        options: dict[str, Any] = {"timeout": REQUEST_SECONDS}
        credentials = self.credentials()
        if credentials is not None:
            options["http_auth"] = credentials
        if self.base_url.startswith("https"):
            options["verify_certs"] = verify_tls()
            options["ssl_show_warn"] = options["verify_certs"]
            if os.environ.get(CA_CERTS_ENV):
                options["ca_certs"] = os.environ[CA_CERTS_ENV]
        # The client logs every request at INFO: a line per search in 'searchidx serve'.
        logging.getLogger("opensearch").setLevel(logging.WARNING)
        return OpenSearch(hosts=[self.base_url], **options)

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) from the environment, else from netrc; None: no credentials."""
        user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
        if user:
            return user, password or ""
        try:
            entry = netrc.netrc().authenticators(self.host)
        except FileNotFoundError:
            return None
        except (netrc.NetrcParseError, OSError) as error:
            raise ClusterError(f"cannot read the netrc file for {self.location}: {error}") from None
        if entry is None:
            return None
        login, _account, secret = entry
        return login, secret or ""


def verify_tls() -> bool:
    """TLS certificates are checked unless :data:`VERIFY_TLS_ENV` says ``false`` by name."""
    value = os.environ.get(VERIFY_TLS_ENV, "true").strip().lower()
    if value not in ("true", "false"):
        raise ClusterError(f"{VERIFY_TLS_ENV} must be true or false, not {value!r}")
    return value == "true"


@contextlib.contextmanager
def cluster_errors(index: ClusterIndex) -> Iterator[None]:
    """Turn the client's exceptions into one line: which URL, and what went wrong."""
    from opensearchpy import exceptions

    try:
        yield
    except exceptions.AuthenticationException:
        raise ClusterError(
            f"the OpenSearch cluster at {index.base_url} refused the credentials (401): check "
            f"{USER_ENV} and {PASSWORD_ENV}, or the netrc entry of {index.host}"
        ) from None
    except exceptions.AuthorizationException as error:
        raise ClusterError(
            f"the OpenSearch cluster at {index.base_url} does not allow this user to "
            f"{_reason(error)} (403)"
        ) from None
    except exceptions.SSLError as error:
        raise ClusterError(
            f"cannot make a TLS connection to {index.base_url}: {_cause(error)} (trust its CA "
            f"with {CA_CERTS_ENV}, or set {VERIFY_TLS_ENV}=false for a test cluster)"
        ) from None
    except exceptions.NotFoundError as error:
        if "index_not_found" not in _reason(error):
            raise ClusterError(
                f"the OpenSearch cluster at {index.base_url} refused a request for "
                f"{index.alias}: {_reason(error)}"
            ) from None
        raise ClusterIndexMissing(
            f"no index at {index.location}: build one with "
            f"'searchidx index CONTENT_DIR --index {index.location}'"
        ) from None
    except exceptions.ConnectionError as error:
        raise ClusterError(
            f"cannot reach the OpenSearch cluster at {index.base_url}: {_cause(error)}"
        ) from None
    except exceptions.TransportError as error:
        raise ClusterError(
            f"the OpenSearch cluster at {index.base_url} refused a request for {index.alias}: "
            f"{_reason(error)}"
        ) from None


def _reason(error: Any) -> str:
    """The cluster's own words for a refused request (its ``reason``), on one line."""
    info = getattr(error, "info", None)
    if isinstance(info, dict):
        cause = info.get("error", {})
        if isinstance(cause, dict):
            root = (cause.get("root_cause") or [cause])[0]
            return " ".join(f"{root.get('type', '')}: {root.get('reason', '')}".split())
    return " ".join(str(getattr(error, "error", error)).split())


def _cause(error: Any) -> str:
    """The innermost reason of a connection failure (refused, unknown host, timed out)."""
    cause = getattr(error, "info", None) or error
    text = str(cause)
    for known in ("Connection refused", "Name or service not known", "timed out"):
        if known in text:
            return known.lower()
    return " ".join(text.split())[:200]


def _without_userinfo(location: str) -> str:
    parts = urlsplit(location)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
