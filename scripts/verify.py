"""`make verify`: the verification groups, one pytest run per group, summed up in one table.

The groups are the slow fault-injection and fuzzing groups plus the fast verification
subsets that `make test` also runs.

Counts come from each run's JUnit XML, not from parsing pytest's output; an expected
failure (``xfail``, a known bug) counts as failed. Ends with ``verify: N passed, M failed``
(``…, K skipped`` when any case was skipped) and exits non-zero when anything failed (or a
group errored or collected nothing) **or was skipped**: the groups only mean something against
PostgreSQL and a real Redis server, so the run forces those backends (``TEST_DATABASE_URL`` /
``TEST_REDIS_URL``, by default the local servers; never the SQLite + embedded-Redis fallback)
and refuses to start when they do not answer. Timings the fault tests measure
(``VERIFY_MEASUREMENTS``) are printed under the table.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from servicekit.testing.backends import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path("services/user_service/tests")
FUZZ = TESTS / "verify" / "test_fuzz.py"
FAST = ["-m", "not verify and not scale"]
#: Single tests of larger files that belong to a group.
SAME_ANSWER_LOGIN = (
    f"{TESTS}/api/test_auth.py::TestLogin::test_unknown_email_and_wrong_password_look_the_same"
)
LINK_RACE = f"{TESTS}/api/test_account.py::TestConcurrentConfirmation"
VERIFY_LINK = f"{TESTS}/api/test_account.py::TestEmailVerification"


@dataclass
class Group:
    """A group of tests: its name, test paths and extra pytest arguments."""

    name: str
    paths: list[str]
    args: list[str]


def groups() -> list[Group]:
    """The groups whose tests exist in this checkout (others are being written elsewhere)."""
    candidates = [
        Group("faults", [str(TESTS / "verify")], ["-m", "verify", "--ignore", str(FUZZ)]),
        Group("fuzz", [str(FUZZ)], ["-m", "verify"]),
        Group("outages", [str(TESTS / "integration/test_redis_outage.py"),
                          "libs/servicekit/tests/test_redis_client_policy.py",
                          "libs/servicekit/tests/test_db_outage.py"], FAST),
        Group("concurrency", [str(TESTS / "integration/test_concurrency.py"),
                              str(TESTS / "api/test_idempotency.py"),
                              LINK_RACE], FAST),
        Group("security", [str(TESTS / "security"), str(TESTS / "api/test_tokens.py"),
                           SAME_ANSWER_LOGIN, f"{VERIFY_LINK}::test_a_link_works_once",
                           f"{VERIFY_LINK}::test_an_expired_link_is_rejected"], FAST),
        Group("migrations", [str(TESTS / "integration/test_migrations.py")], FAST),
    ]  # fmt: skip
    found = []
    for group in candidates:
        group.paths = [p for p in group.paths if (ROOT / p.partition("::")[0]).exists()]
        if group.paths:
            found.append(group)
    return found


@dataclass
class Row:
    """One group's line in the summary table."""

    group: str
    cases: int
    passed: int
    failed: int
    skipped: int
    seconds: float


def count(junit: Path) -> tuple[int, int, int, int]:
    """(cases, passed, failed, skipped) from a JUnit XML file.

    An expected failure (``xfail``: a known bug) counts as failed: the behaviour it checks
    does not hold.
    """
    cases = failed = skipped = 0
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 - our own file
        cases += 1
        skip = case.find("skipped")
        known_bug = skip is not None and skip.get("type") == "pytest.xfail"
        if known_bug or case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif skip is not None:
            skipped += 1
    return cases, cases - failed - skipped, failed, skipped


def _answers(url: str, default_port: int, *, resp: bool = False) -> bool:
    """Whether the server of ``url`` accepts a TCP connection (and, ``resp``, answers PING)."""
    parsed = make_url(url)
    address = (parsed.host or "127.0.0.1", parsed.port or default_port)
    try:
        with socket.create_connection(address, timeout=2) as sock:
            if not resp:
                return True
            sock.sendall(b"PING\r\n")
            return sock.recv(64)[:1] in (b"+", b"-")  # PONG, or -NOAUTH: a Redis server
    except OSError:
        return False


def real_backends() -> tuple[dict[str, str], str | None]:
    """The environment that pins the test plugin to PostgreSQL and a real Redis server.

    Or, when they cannot be used, the reason (then nothing runs). Explicit URLs win over every
    fallback.
    """
    database = os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL
    redis = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL
    if make_url(database).get_backend_name() != "postgresql":
        return {}, f"TEST_DATABASE_URL={database!r}: make verify needs PostgreSQL"
    if not redis.startswith(("redis://", "rediss://")):
        return {}, f"TEST_REDIS_URL={redis!r}: make verify needs a Redis server over TCP"
    if not _answers(database, 5432):
        return {}, f"PostgreSQL ({make_url(database).host}) does not answer: start it"
    if not _answers(redis, 6379, resp=redis.startswith("redis://")):
        return {}, f"Redis ({make_url(redis).host}) does not answer: start it"
    # Not "embedded" (ignored anyway next to explicit URLs) nor "cluster" (own_redis skips).
    env = {"TEST_DATABASE_URL": database, "TEST_REDIS_URL": redis, "SERVICEKIT_TEST_BACKENDS": ""}
    return env, None


def main() -> int:
    """Run each group, print the table; 1 when a case failed or was skipped, 2 if not run."""
    backends, unusable = real_backends()
    if unusable:
        print(f"verify: not run: {unusable}", file=sys.stderr)  # noqa: T201
        return 2
    work = Path(tempfile.mkdtemp(prefix="verify-"))
    measurements = work / "measurements.jsonl"
    env = dict(os.environ, VERIFY_MEASUREMENTS=str(measurements), **backends)
    rows: list[Row] = []
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
        cases, passed, failed, skipped = count(junit) if junit.exists() else (0, 0, 0, 0)
        if code not in (0, 5) and failed == 0:  # pytest itself failed (collection, usage…)
            failed = max(1, cases - passed - skipped)
        if code == 5 or cases == 0:  # no test collected: the group checked nothing
            failed = max(failed, 1)
        rows.append(Row(group.name, cases, passed, failed, skipped, time.monotonic() - t0))

    print("\n| group | cases | passed | failed | skipped | seconds |")  # noqa: T201
    print("|---|---:|---:|---:|---:|---:|")  # noqa: T201
    for r in rows:
        cells = (r.group, r.cases, r.passed, r.failed, r.skipped, f"{r.seconds:.0f}")
        print("| " + " | ".join(map(str, cells)) + " |")  # noqa: T201
    if measurements.exists():
        print("\nmeasured:")  # noqa: T201
        for line in measurements.read_text().splitlines():
            item = json.loads(line)
            print(f"  {item['name']} = {item['value']}")  # noqa: T201
    passed = sum(r.passed for r in rows)
    failed = sum(r.failed for r in rows)
    skipped = sum(r.skipped for r in rows)
    print(f"\n({time.monotonic() - started:.0f} s)")  # noqa: T201
    if skipped:  # a skipped case verified nothing (a missing backend, the cluster backend…)
        print(f"verify: {passed} passed, {failed} failed, {skipped} skipped "  # noqa: T201
              "(FAILED: a skipped case verified nothing)")  # fmt: skip
    else:
        print(f"verify: {passed} passed, {failed} failed")  # noqa: T201
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
