#!/usr/bin/env bash
# Set up (first time only) and start Restorer. Usage: ./run-app.sh [IMAGE]   or   ./run-app.sh upscale ...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/ensure_venv.sh"
# The window needs Qt's X11 libraries from the system; say which are missing (and how to install them)
# instead of Qt's abort, which names only one. Command-line use needs none of them. The command is the first
# word after restorer's own options (--debug, -q): `./run-app.sh -q upscale ...` is command-line use too.
cmd=""
for arg in "$@"; do
  case "$arg" in
    --debug|-q|--quiet) ;;
    *) cmd="$arg"; break ;;
  esac
done
case "$cmd" in
  upscale|inpaint|train|models|explore|clean|detect|restore|colorize|-h|--help|--version|--self-test) ;;
  *) "$root/scripts/check_qt_libs.sh" "$root/.venv/bin/python" || exit $? ;;
esac
exec "$root/.venv/bin/restorer" "$@"
