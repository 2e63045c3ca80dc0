#!/usr/bin/env bash
# Install JobQueue into .venv and run a real multi-task workflow against the local demo API,
# on the embedded SQLite default (a private database file of the run). Needs only Python 3.11+.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev,speed]"
exec .venv/bin/jobqueue demo "$@"
