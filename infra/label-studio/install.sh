#!/usr/bin/env bash
# Label Studio in its own venv (about 1 GB, minutes to install): it is a tool the pipeline talks
# to over REST, never a dependency of kpdeliver itself.
#   infra/label-studio/install.sh [VENV]        default: .work/ls-venv
# Re-running is cheap: an existing venv with a working `label-studio` is left alone.
set -euo pipefail
VENV="${1:-${KPDELIVER_LS_VENV:-.work/ls-venv}}"
PYTHON="${PYTHON:-python3}"
if [ -x "$VENV/bin/label-studio" ] && [ -f "$VENV/.installed-stamp" ]; then
    echo "label-studio already installed in $VENV"
    exit 0
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "label-studio needs Python >= 3.10 ($PYTHON is older)" >&2; exit 1; }
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "label-studio>=1.23,<2"
touch "$VENV/.installed-stamp"
echo "label-studio $("$VENV/bin/pip" show label-studio | sed -n 's/^Version: //p') in $VENV"
