#!/usr/bin/env bash
# Create .venv (if needed) and install Restorer with its test tools into it.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtual environment in $venv" >&2
  "$py" -m venv "$venv"
fi
stamp="$venv/.restorer-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing Restorer and its dependencies (torch==2.14.1, torchvision==0.29.1, PySide6, ...)" >&2
  "$venv/bin/python" -m pip install -q --upgrade pip >&2 || true
  "$venv/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1 >&2
  "$venv/bin/python" -m pip install -q -e "$root[test]" >&2
  echo "$want" > "$stamp"
fi
