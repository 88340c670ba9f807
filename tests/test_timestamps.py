from datetime import UTC, datetime, timedelta, timezone

from searchidx.timestamps import iso_timestamp


def test_iso_timestamp_spells_utc_as_z_and_reads_back():
    moment = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert iso_timestamp(moment) == "2024-05-01T09:30:00Z"
    assert datetime.fromisoformat(iso_timestamp(moment)) == moment


def test_iso_timestamp_keeps_another_offset():
    moment = datetime(2024, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    assert iso_timestamp(moment) == "2024-05-01T09:30:00+02:00"


def test_iso_timestamp_writes_no_moment_as_none():
    assert iso_timestamp(None) is None
