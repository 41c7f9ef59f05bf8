#!/usr/bin/env bash
# Start the machine's PostgreSQL (Debian's packages) and create a throwaway test database.
# Prints the URL for OTAJOB_TEST_POSTGRES_URL on success; prints nothing if PostgreSQL
# cannot be had here, and the PostgreSQL tests then skip (the SQLite ones always run).
set -u
command -v pg_ctlcluster >/dev/null || exit 0
# A freshly installed package may have no cluster yet (no create_main_cluster): make one.
if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
  newest="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)"
  [ -n "$newest" ] && pg_createcluster "$newest" main >/dev/null 2>&1
fi
read -r version cluster port _ < <(pg_lsclusters -h 2>/dev/null | head -n 1)
[ -n "$version" ] || exit 0
pg_ctlcluster "$version" "$cluster" start >/dev/null 2>&1 || true
for _ in $(seq 1 30); do
  su postgres -c "psql -qtAc 'SELECT 1'" >/dev/null 2>&1 && break
  sleep 0.5
done
su postgres -c "psql -qtAc \"DROP DATABASE IF EXISTS otajob_test\"" >/dev/null 2>&1 || exit 0
su postgres -c "psql -qtAc \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'otajob') THEN CREATE ROLE otajob LOGIN PASSWORD 'otajob'; END IF; END \\\$\\\$\"" >/dev/null 2>&1 || exit 0
su postgres -c "psql -qtAc \"CREATE DATABASE otajob_test OWNER otajob\"" >/dev/null 2>&1 || exit 0
echo "postgresql://otajob:otajob@127.0.0.1:${port}/otajob_test"
