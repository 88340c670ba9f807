"""The one written form of a moment: ISO 8601, with UTC spelled ``Z``.

The JSON API, the query log and the Atom feed write moments this way, so a reader of one reads
them all, and ``datetime.fromisoformat`` reads each back.
"""

from __future__ import annotations

from datetime import datetime
from typing import overload


@overload
def iso_timestamp(moment: datetime) -> str: ...
@overload
def iso_timestamp(moment: None) -> None: ...
def iso_timestamp(moment: datetime | None) -> str | None:
    """``2024-05-01T09:30:00Z`` for a UTC moment (other offsets written as they are); None
    (JSON's null) for no moment."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
