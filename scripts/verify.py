"""`make verify`: the slow fault-injection and fuzzing groups plus the fast verification
subsets that `make test` also runs, one pytest run per group, summed up in one table.

Counts come from each run's JUnit XML, not from parsing pytest's output. Ends with
``verify: N passed, M failed`` and exits non-zero when anything failed (or a group errored).
Timings the fault tests measure (``VERIFY_MEASUREMENTS``) are printed under the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path("services/user_service/tests")
FUZZ = TESTS / "verify" / "test_fuzz.py"
FAST = ["-m", "not verify and not scale"]


@dataclass
class Group:
    name: str
    paths: list[str]
    args: list[str]


def groups() -> list[Group]:
    """The groups whose tests exist in this checkout (others are being written elsewhere)."""
    candidates = [
        Group("faults", [str(TESTS / "verify")], ["-m", "verify", "--ignore", str(FUZZ)]),
        Group("fuzz", [str(FUZZ)], ["-m", "verify"]),
        Group("concurrency", [str(TESTS / "integration/test_concurrency.py")], FAST),
        Group("security", [str(TESTS / "security"), str(TESTS / "api/test_tokens.py")], FAST),
        Group("migrations", [str(TESTS / "integration/test_migrations.py")], FAST),
    ]  # fmt: skip
    found = []
    for group in candidates:
        group.paths = [p for p in group.paths if (ROOT / p).exists()]
        if group.paths:
            found.append(group)
    return found


def count(junit: Path) -> tuple[int, int, int]:
    """(cases, passed, failed) from a JUnit XML file; skipped cases are neither."""
    cases = failed = skipped = 0
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 - our own file
        cases += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
    return cases, cases - failed - skipped, failed


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="verify-"))
    measurements = work / "measurements.jsonl"
    env = dict(os.environ, VERIFY_MEASUREMENTS=str(measurements))
    rows: list[tuple[str, int, int, int, float]] = []
    started = time.monotonic()
    for group in groups():
        junit = work / f"{group.name}.xml"
        print(f"\n=== {group.name}: pytest {' '.join(group.paths)}", flush=True)  # noqa: T201
        t0 = time.monotonic()
        code = subprocess.call(  # noqa: S603 - fixed command line
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *group.paths,
             *group.args, f"--junitxml={junit}", f"--basetemp={work / group.name}"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        cases, passed, failed = count(junit) if junit.exists() else (0, 0, 0)
        if code not in (0, 5) and failed == 0:  # pytest itself failed (collection, usage…)
            failed = max(1, cases - passed)
        rows.append((group.name, cases, passed, failed, time.monotonic() - t0))

    print("\n| group | cases | passed | failed | seconds |")  # noqa: T201
    print("|---|---:|---:|---:|---:|")  # noqa: T201
    for name, cases, passed, failed, seconds in rows:
        print(f"| {name} | {cases} | {passed} | {failed} | {seconds:.0f} |")  # noqa: T201
    if measurements.exists():
        print("\nmeasured:")  # noqa: T201
        for line in measurements.read_text().splitlines():
            item = json.loads(line)
            print(f"  {item['name']} = {item['value']}")  # noqa: T201
    total_passed = sum(r[2] for r in rows)
    total_failed = sum(r[3] for r in rows)
    print(f"\n({time.monotonic() - started:.0f} s)")  # noqa: T201
    print(f"verify: {total_passed} passed, {total_failed} failed")  # noqa: T201
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
