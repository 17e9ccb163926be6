#!/usr/bin/env bash
# Set up (first time only) and run the whole test suite, headless (no display or GPU needed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/ensure_venv.sh"
cd "$root"
export QT_QPA_PLATFORM=offscreen
exec "$root/.venv/bin/python" -m pytest -q "$@"
