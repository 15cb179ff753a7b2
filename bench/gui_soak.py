"""The GUI soak test's long form (issue 28): the real app on Xvfb with a window manager, random
lecture actions for an hour at each screen size (tests/soak/monkey.py), against the goal of no
crash in 60 minutes at 1920×1080 and at 1366×768.

    python bench/gui_soak.py [--minutes 60] [--sizes 1920x1080,1366x768] [--seed 0]

For each size: actions fired, minutes, crashes (a signal or a non-zero exit, the window never
appearing, or Ctrl+Q not ending the app), peak resident memory, and unexpected errors the app
logged. Prints rows for bench/RESULTS.md; exits 1 if any run crashed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.soak, from a checkout

from tests.soak.monkey import missing_programs, run_soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--sizes", default="1920x1080,1366x768")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    reason = missing_programs()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    rows, crashed = [], False
    for number, size in enumerate(args.sizes.split(",")):
        report = run_soak(
            args.minutes * 60, size, seed=args.seed + number, progress=lambda line: print(line, flush=True)
        )
        print(report.summary(), flush=True)
        if report.crashed:
            crashed = True
            print(report.app_log_tail, file=sys.stderr)
        for line in report.logged_errors:
            print(f"logged: {line}", file=sys.stderr)
        busiest = ", ".join(f"{name} {count}" for name, count in report.actions.most_common(6))
        rows.append(
            f"| {date.today()} | {platform.machine()}, {os.cpu_count()} cores | {size} | seed {report.seed} | "
            f"{report.total_actions} | {report.seconds / 60:.1f} | {int(report.crashed)} | "
            f"{report.peak_rss_mb:.0f} MB | {len(report.logged_errors)} | {busiest} |"
        )
    print("| date | machine | screen | seed | actions | minutes | crashes | peak memory | errors logged | most fired |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
