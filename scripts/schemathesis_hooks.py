"""Schemathesis hooks for scripts/schemathesis.sh.

The OpenAPI documents state every rule a single value must keep. A few rules
tie two parameters together, which OpenAPI parameters cannot express (the
documents say them in words): these hooks keep schema-valid (positive) cases
within them, so that a 400 on a positive case is always a finding. Negative
cases are left alone: the server must refuse them whatever the hooks say.

- `GET /v1/events`: `name` needs `category`; `to` must be after `from`.
- `GET /v1/errors`: `to` must be after `from`.
- `GET /v1/links/{short_code}/stats`: `from` not after `to`, and the range
  holds at most MAX_BUCKETS buckets (query-api/src/routes/clicks.rs).

"""

from __future__ import annotations

import calendar
import datetime as dt
import re

import schemathesis

MAX_BUCKETS = 3_700

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_NAIVE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$")


def _positive(case) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def _instant(text: str, day_end: bool) -> dt.datetime | None:
    """A listing bound as the query API reads it (params.rs `instant`)."""
    try:
        if match := _DAY.match(text):
            day = dt.datetime(*map(int, match.groups()), tzinfo=dt.timezone.utc)
            return day + dt.timedelta(days=1) if day_end else day
        if match := _NAIVE.match(text):
            return dt.datetime(*map(int, match.groups()), tzinfo=dt.timezone.utc)
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError):
        return None


def _day_or_month(text: str, end: bool) -> dt.date | None:
    """A stats bound as the query API reads it (clicks.rs `date`)."""
    try:
        if match := _DAY.match(text):
            return dt.date(*map(int, match.groups()))
        if match := _MONTH.match(text):
            year, month = map(int, match.groups())
            last = calendar.monthrange(year, month)[1] if end else 1
            return dt.date(year, month, last)
    except ValueError:
        return None
    return None


def _buckets(granularity: str, first: dt.date, last: dt.date) -> int:
    if granularity == "month":
        return (last.year * 12 + last.month) - (first.year * 12 + first.month) + 1
    return (last - first).days + 1


def _keep_listing_range(query: dict) -> None:
    if "from" in query and "to" in query:
        start, end = _instant(query["from"], False), _instant(query["to"], True)
        if start is None or end is None or start >= end:
            del query["to"]


def _keep_stats_range(query: dict) -> None:
    if "from" not in query:
        return
    start = _day_or_month(query["from"], False)
    end = _day_or_month(query["to"], True) if "to" in query else dt.datetime.now(dt.timezone.utc).date()
    granularity = query.get("granularity", "day")
    if start is None or end is None or start > end or _buckets(granularity, start, end) > MAX_BUCKETS:
        del query["from"]


@schemathesis.hook
def map_case(context, case):
    if not _positive(case) or not isinstance(case.query, dict):
        return case
    path = case.operation.path
    if path == "/v1/events":
        if "name" in case.query and "category" not in case.query:
            del case.query["name"]
        _keep_listing_range(case.query)
    elif path == "/v1/errors":
        _keep_listing_range(case.query)
    elif path == "/v1/links/{short_code}/stats":
        _keep_stats_range(case.query)
    return case
