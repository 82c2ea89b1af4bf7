#!/usr/bin/env bash
# Refresh constraints.txt: install the newest versions pyproject.toml allows into a scratch venv,
# run the whole test suite there, and only if it passes write the versions it passed with.
# Usage (from the project root): bash tools/refresh-lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -e '.[dev,ray]'
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps torchattacks==3.5.1
"$venv/bin/python" -m pytest -q
{
  echo "# Versions the test suite passed with (Python 3.11, CPU). Used by the README's set-up and .ci/run:"
  echo "#   pip install -c constraints.txt -e '.[dev,ray]'"
  echo "# Refresh (see README, 'Dependency lock'): bash tools/refresh-lock.sh"
  # torch: the CPU build's local label (+cpu) is dropped so that the pin also matches on PyPI.
  "$venv/bin/pip" freeze --exclude-editable | grep -v -i '^torchattacks' | sed -E 's/^(torch==[0-9.]+)\+cpu$/\1/'
} > constraints.txt
echo "constraints.txt refreshed from $venv"
