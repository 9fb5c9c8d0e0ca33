#!/usr/bin/env sh
# Debian's chromium for the report's browser test (tests/report/test_report_browser.py), installed
# only where it is missing (idempotent). `make test-deps` (and so `make test`) runs it.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version
