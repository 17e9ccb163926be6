#!/usr/bin/env bash
# Set up (first time only) and start Restorer. Usage: ./run-app.sh [IMAGE]   or   ./run-app.sh upscale ...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/ensure_venv.sh"
exec "$root/.venv/bin/restorer" "$@"
