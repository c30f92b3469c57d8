"""Billing periods: calendar months in UTC, named `YYYY-MM`, each the half-open interval
[first instant of the month, first instant of the next) of `occurred_at`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from deputy.billing.seats import month_start, next_month_start
from deputy.domain.errors import ValidationFailed

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class Period:
    name: str
    start: datetime
    end: datetime

    def is_over(self, now: datetime) -> bool:
        return now >= self.end


def period_of(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m}"


def period_at(moment: datetime) -> Period:
    start = month_start(moment)
    return Period(period_of(start), start, next_month_start(start))


def parse_period(name: str) -> Period:
    """The period named `YYYY-MM`; `ValidationFailed` for anything else."""
    match = _PERIOD.match(name)
    if match is None:
        raise ValidationFailed(
            f"a period is a calendar month written YYYY-MM, not {name!r}",
            details={"period": name},
        )
    year, month = int(match.group(1)), int(match.group(2))
    if not 2000 <= year <= 2999:
        raise ValidationFailed(
            "a period is a month of the years 2000 to 2999", details={"period": name}
        )
    return period_at(datetime(year, month, 1, tzinfo=UTC))
