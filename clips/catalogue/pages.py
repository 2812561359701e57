"""Pages of the catalogue at any depth, and a count that never scans a million rows.

A page is numbered (OFFSET: the first MAX_OFFSET clips, as clients written against
`?page=N` expect) or follows a cursor: the sort keys of the clip it starts after
(or before), so that the next page is an index range, the same cost at any depth,
and a clip added meanwhile shifts nothing. Every order ends with the id, which
makes the position exact.
"""

import base64
import binascii
import datetime
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import F, Field, Func, Model, Q, QuerySet, Value
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
)

from clips.catalogue import search

# The deepest a numbered page may start: past it, OFFSET costs what it skips.
MAX_OFFSET = 10_000
# Counted exactly up to here; above, the planner's estimate (flagged as such).
EXACT_COUNT_MAX = 1_000
# An estimate this far above it is not checked by counting: a filter or a search
# that matches thousands of clips needs no count of the first thousand (a search's
# count of 1,001 reads 1,001 rows scattered over the table: 5 ms at a million).
TRUSTED_ESTIMATE = 2 * EXACT_COUNT_MAX

# The orders a client may ask for, each key with how a cursor reads it back.
_READ = {
    "created_at": datetime.datetime.fromisoformat,
    "title": str,
    "duration": float,
    "play_count": int,
    search.RANK: float,
    "id": int,
}


class PageError(ValueError):
    """A page this list cannot give: `parameter` says which one is wrong."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class PastTheLast(PageError):
    """A numbered page after the last one."""

    def __init__(self) -> None:
        super().__init__("page", "Invalid page: it is past the last.")


@dataclass(frozen=True)
class Order:
    """Sort keys, most significant first, as (name, descending); the id last."""

    keys: tuple[tuple[str, bool], ...]

    @classmethod
    def of(cls, ordering: list[str]) -> "Order":
        """`ordering` as the API takes it: `-play_count`, `title`."""
        keys = [(key.lstrip("-"), key.startswith("-")) for key in ordering]
        if keys[-1][0] != "id":
            keys.append(("id", keys[-1][1]))
        return cls(tuple(keys))

    def order_by(self, *, backwards: bool = False) -> list[str]:
        return [
            f"{'-' if descending != backwards else ''}{name}"
            for name, descending in self.keys
        ]

    def position(self, clip: Model) -> list:
        return [getattr(clip, name) for name, _ in self.keys]

    def beyond(self, position: list, *, backwards: bool = False) -> Q:
        """The clips after `position` in this order (before it: `backwards`)."""
        later = [descending != backwards for _, descending in self.keys]
        columns = [F(name) for name, _ in self.keys]
        values = [Value(value) for value in position]
        if len(set(later)) == 1:
            # One row comparison, (a, b) < (x, y): an index range, also within
            # a run of equal first keys (the 900,000 clips nobody has played).
            compare = LessThan if later[0] else GreaterThan
            return Q(compare(_Row(*columns), _Row(*values)))
        # Mixed directions: key by key, within the range of the first.
        first = LessThanOrEqual if later[0] else GreaterThanOrEqual
        after = Q()
        equal = Q()
        for column, value, descending in zip(columns, values, later, strict=True):
            compare = LessThan if descending else GreaterThan
            after |= equal & Q(compare(column, value))
            equal &= Q(Exact(column, value))
        return Q(first(columns[0], values[0])) & after

    def cursor(self, position: list, *, backwards: bool = False) -> str:
        body = {
            "o": self.order_by(),
            "p": [v.isoformat() if hasattr(v, "isoformat") else v for v in position],
            "b": backwards,
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def read(cursor: str, orders: list["Order"]) -> tuple["Order", list, bool]:
        """The order (one of `orders`), position and direction in a cursor."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            body = json.loads(raw)
            (order,) = [each for each in orders if each.order_by() == body["o"]]
            if not isinstance(body["b"], bool):
                raise ValueError
            position = [
                _READ[name](value)
                for (name, _), value in zip(order.keys, body["p"], strict=True)
            ]
        except (binascii.Error, ValueError, KeyError, TypeError) as error:
            raise PageError(
                "cursor",
                "Not a cursor of this list (its order, search and filters): "
                "follow the next and previous links as given.",
            ) from error
        return order, position, body["b"]


class _Row(Func):
    """(a, b, c): a row value, compared with another column by column."""

    function = ""
    arg_joiner = ", "
    template = "(%(expressions)s)"
    output_field = Field()


@dataclass
class Page:
    clips: list
    count: int
    count_estimated: bool
    # Cursors of the neighbouring pages; None at either end.
    next: str | None
    previous: str | None


def page_get(
    clips: QuerySet,
    *,
    ordering: list[str] | None = None,
    size: int,
    number: int | None = None,
    cursor: str | None = None,
) -> Page:
    """Page `number` (1-based, OFFSET) or the page `cursor` points at, in
    `ordering`; none: the newest first, or a search's most relevant first."""
    count, estimated = count_of(clips)
    orders = [Order.of(ordering or ["-created_at"])]
    if search.ranked(clips) and not ordering:
        # Ranking reads every match: up to EXACT_COUNT_MAX of them, whose count
        # is exact; a search that matches more lists them newest first.
        ranked = Order.of([f"-{search.RANK}", "-created_at"])
        orders = [ranked, *orders] if not estimated else [*orders, ranked]
    order = orders[0]
    if cursor is not None:
        # The order the cursor was made in, should the matches have crossed
        # the line meanwhile.
        order, position, backwards = Order.read(cursor, orders)
        rows = list(
            clips.filter(order.beyond(position, backwards=backwards)).order_by(
                *order.order_by(backwards=backwards)
            )[: size + 1]
        )
        more, rows = len(rows) > size, rows[:size]
        if backwards:
            rows.reverse()
        # The way back is there: the cursor was made from a clip on it.
        has_next, has_previous = (True, more) if backwards else (more, True)
    else:
        number = number or 1
        offset = (number - 1) * size
        if offset >= MAX_OFFSET and count <= offset:
            raise PastTheLast
        if offset >= MAX_OFFSET:
            raise PageError(
                "page",
                f"Numbered pages end at clip {MAX_OFFSET}: past it, follow the "
                f"next links, which carry a cursor (?cursor=), the same cost at "
                f"any depth.",
            )
        rows = list(clips.order_by(*order.order_by())[offset : offset + size + 1])
        more, rows = len(rows) > size, rows[:size]
        if not rows and number > 1:
            raise PastTheLast
        has_next, has_previous = more, number > 1
    return Page(
        clips=rows,
        count=count,
        count_estimated=estimated,
        next=order.cursor(order.position(rows[-1])) if rows and has_next else None,
        previous=(
            order.cursor(order.position(rows[0]), backwards=True)
            if rows and has_previous
            else None
        ),
    )


def count_of(clips: QuerySet) -> tuple[int, bool]:
    """How many clips, and whether that is an estimate.

    PostgreSQL's planner is asked first (a fraction of a millisecond): far above
    EXACT_COUNT_MAX its estimate is the answer. Otherwise the clips are counted, up
    to EXACT_COUNT_MAX + 1 of them; past that, the estimate again (never below
    what was counted). SQLite counts them all.
    """
    postgresql = connections[clips.db].vendor == "postgresql"
    planned = _planned_rows(clips) if postgresql else 0
    if planned > TRUSTED_ESTIMATE:
        return planned, True
    counted = clips.order_by().values("pk")[: EXACT_COUNT_MAX + 1].count()
    if counted <= EXACT_COUNT_MAX:
        return counted, False
    if not postgresql:
        return clips.count(), False
    return max(planned, counted), True


def _planned_rows(clips: QuerySet) -> int:
    sql, params = clips.order_by().values("pk").query.sql_with_params()
    with connections[clips.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan: Any = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatingPaginator(Paginator):
    """Django's paginator (the admin's) with count_of()'s count, and no page
    numbered past MAX_OFFSET clips: filters and search reach the rest."""

    @cached_property
    def count(self) -> int:
        return count_of(self.object_list)[0]

    @cached_property
    def num_pages(self) -> int:
        return max(1, min(super().num_pages, MAX_OFFSET // self.per_page))
