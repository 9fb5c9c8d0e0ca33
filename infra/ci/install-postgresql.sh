#!/usr/bin/env sh
# Debian's PostgreSQL server for the test that runs Prefect's server on PostgreSQL as the
# production stack does (tests/test_deploy.py, tests/postgres.py), installed only where no server
# is (idempotent). The test starts its own throwaway cluster; the package's own cluster is not used.
# `make test-deps` (and so `make test`) runs it.
set -eu
for initdb in /usr/lib/postgresql/*/bin/initdb; do
    if [ -x "$initdb" ] && id postgres >/dev/null 2>&1; then
        exit 0
    fi
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends postgresql
ls /usr/lib/postgresql/*/bin/initdb
