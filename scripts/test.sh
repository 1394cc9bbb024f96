#!/usr/bin/env bash
# Set up (packages, build) and run the whole fusedax test suite as root.
# Ends with pytest's summary line; extra arguments go to pytest (e.g. -k wire).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec /usr/bin/python3 -m pytest -ra -v test/ "$@"
