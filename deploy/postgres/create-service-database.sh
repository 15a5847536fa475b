#!/bin/sh
# Create a service's own role and database on a shared PostgreSQL server; safe to run again.
#
#   SERVICE_DB, SERVICE_DB_USER, SERVICE_DB_PASSWORD   the database, its owner and password
#   PGHOST, PGUSER, PGPASSWORD, PGDATABASE             a superuser connection (libpq)
#
# The role is created if missing and its password set to SERVICE_DB_PASSWORD on every run
# (so a changed .env takes effect); the database is created if missing, owned by the role,
# and only its owner (and superusers) may connect to it. The role gets no privilege on any
# other database's tables. Run by the `notification_db` service in deploy/docker-compose.yml.
set -eu
: "${SERVICE_DB:?}" "${SERVICE_DB_USER:?}" "${SERVICE_DB_PASSWORD:?}"

psql --no-psqlrc -v ON_ERROR_STOP=1 \
    -v db="$SERVICE_DB" -v role="$SERVICE_DB_USER" -v password="$SERVICE_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
echo "database ${SERVICE_DB} owned by ${SERVICE_DB_USER}: ready"
