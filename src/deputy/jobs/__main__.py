"""`python -m deputy.jobs --import my.jobs.module [--import ...]`: run a jobs worker configured by
the `DEPUTY_*` environment (see `deputy.config`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from deputy.config import ConfigError, load_settings
from deputy.jobs.worker import run_worker


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deputy.jobs", description=__doc__)
    parser.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module that defines jobs (repeatable)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=int,
        default=0,
        help="on SIGTERM, give running jobs this long before stopping",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_worker(settings, args.modules, drain_seconds=args.drain_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
