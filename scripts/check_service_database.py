"""Run deploy/postgres/create-service-database.sh against a real PostgreSQL server, twice.

The script Compose's ``notification_db`` runs, with the server the tests use
(``TEST_DATABASE_URL``, else 127.0.0.1:5432 when it answers) and a throw-away role and
database: the first run creates them, the second (another password) must succeed too and
change the password. Then: the database belongs to the role, PUBLIC may not connect to it,
the role is no superuser and may log in to its database. Both are dropped at the end.
Without a server or ``psql`` the check is skipped with a warning.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from servicekit.testing.backends import plan_backends

SCRIPT = Path(__file__).resolve().parent.parent / "deploy/postgres/create-service-database.sh"


def say(message: str) -> None:
    """Print a line prefixed with ``service-db:``."""
    sys.stdout.write(f"service-db: {message}\n")


def server_env() -> dict[str, str] | None:
    """The libpq variables of the test server (superuser), or None when there is none."""
    url = plan_backends().database_server_url
    if url is None or make_url(url).get_backend_name() != "postgresql":
        return None
    parsed = make_url(url)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PGHOST": parsed.host or "127.0.0.1",
        "PGPORT": str(parsed.port or 5432),
        "PGUSER": parsed.username or "postgres",
        "PGDATABASE": parsed.database or "postgres",
    }
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return env


def psql(env: dict[str, str], sql: str) -> str:
    """One statement's unaligned, tuples-only output."""
    done = subprocess.run(  # noqa: S603 - psql with our own statements
        ["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-Atc", sql],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def create(env: dict[str, str], name: str, password: str) -> None:
    """Run the deployment script for database and role ``name``."""
    service = {"SERVICE_DB": name, "SERVICE_DB_USER": name, "SERVICE_DB_PASSWORD": password}
    done = subprocess.run(  # noqa: S603 - our own script
        ["sh", str(SCRIPT)],  # noqa: S607
        env={**env, **service},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{SCRIPT.name} failed:\n{done.stdout}{done.stderr}")


def facts(env: dict[str, str], name: str) -> list[str]:
    """Password hash, database owner, PUBLIC may connect, role unfit (superuser, no login).

    ``name`` is our own generated name: it needs no quoting.
    """
    row = psql(
        env,
        "SELECT r.rolpassword, pg_get_userbyid(d.datdba),"  # noqa: S608
        " has_database_privilege('public', d.datname, 'CONNECT'),"
        " r.rolsuper OR NOT r.rolcanlogin"
        f" FROM pg_authid r, pg_database d WHERE r.rolname = '{name}' AND d.datname = '{name}'",
    )
    return row.split("|")


def check(env: dict[str, str], name: str) -> list[str]:
    """Create twice, then the problems with what exists."""
    create(env, name, secrets.token_hex(16))
    first_password = facts(env, name)[0]
    password = secrets.token_hex(16)
    create(env, name, password)
    say("ran twice")
    hashed, owner, public_connect, unfit_role = facts(env, name)
    problems = []
    if hashed == first_password:
        problems.append("the second run did not change the password")
    if owner != name:
        problems.append(f"the database is owned by {owner!r}")
    if public_connect != "f":
        problems.append("PUBLIC may connect to the database")
    if unfit_role != "f":
        problems.append("the role is a superuser or cannot log in")
    as_role = {**env, "PGUSER": name, "PGDATABASE": name, "PGPASSWORD": password}
    if psql(as_role, "SELECT current_user") != name:
        problems.append("the role cannot connect to its database")
    return problems


def main() -> int:
    """Check the script on a throw-away database and role; 1 on a problem."""
    env = server_env()
    if env is None or shutil.which("psql") is None:
        say("WARNING: no PostgreSQL server or no psql; create-service-database.sh NOT run")
        return 0
    name = f"deploy_check_{secrets.token_hex(4)}"
    try:
        problems = check(env, name)
    finally:
        psql(env, f'DROP DATABASE IF EXISTS "{name}"')
        psql(env, f'DROP ROLE IF EXISTS "{name}"')
    for problem in problems:
        say(problem)
    if not problems:
        say(f"OK on {env['PGHOST']}:{env['PGPORT']} (database and role {name}, dropped)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
