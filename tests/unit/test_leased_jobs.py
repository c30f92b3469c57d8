"""The progress writer shared by builds and sandbox runs: the first report is written at once,
later ones at most once per interval (the latest value wins), an urgent change at once, and an
unchanged value never."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from deputy.services.leased_jobs import ProgressWriter

INTERVAL = 1.0
"""Long next to the pauses between reports, so the order of events does not depend on load."""


async def _drive(
    reports: list[tuple[int, float]], urgent: Callable[[int, int], bool]
) -> list[tuple[int, float]]:
    """Report each value after its pause; what was saved, with when (seconds from start)."""
    loop = asyncio.get_running_loop()
    saved: list[tuple[int, float]] = []
    start = loop.time()

    async def save(value: int) -> None:
        saved.append((value, loop.time() - start))

    writer: ProgressWriter[int] = ProgressWriter(save, INTERVAL, urgent)
    task = asyncio.create_task(writer.run())
    for value, pause in reports:
        writer.report(value)
        await asyncio.sleep(pause)
    await asyncio.sleep(INTERVAL * 1.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return saved


def never(written: int, latest: int) -> bool:
    return False


def test_reports_are_throttled_and_the_latest_value_wins() -> None:
    reports = [(1, 0.01), (2, 0.01), (3, 0.01), (4, 0.01), (4, 0.01)]
    saved = asyncio.run(_drive(reports, never))
    assert [value for value, _ in saved] == [1, 4]  # 2 and 3 were overtaken; 4 written once
    assert saved[0][1] < INTERVAL <= saved[1][1]


def test_an_urgent_change_is_written_at_once() -> None:
    saved = asyncio.run(_drive([(1, 0.01), (100, 0.05)], lambda written, latest: latest >= 100))
    assert [value for value, _ in saved] == [1, 100]
    assert saved[1][1] < INTERVAL
