#!/usr/bin/env bash
# Create .venv (if needed) and install Restorer with its test tools into it.
# Re-installs only when pyproject.toml changed since the last install (or the last one did not finish).
# PYTHON=/path/to/python3.X picks the interpreter the venv is made from (default: python3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"
stamp="$venv/.restorer-installed"
fail() { local code=$1; shift; echo "Restorer set-up: $*" >&2; exit "$code"; }   # 2: fix the machine, 1: retry

# A .venv without pip (made with python3-venv missing, or by a tool that leaves pip out) would fail later with
# "No module named pip": give it pip, or say what to do. Checked only until the first install has finished.
if [ -x "$venv/bin/python" ] && [ ! -f "$stamp" ] && ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  "$venv/bin/python" -m ensurepip --upgrade >/dev/null 2>&1 \
    || fail 2 "$venv has no pip and cannot get it: remove it (rm -rf '$venv') and run this again (on Debian/Ubuntu install python3-venv first)"
fi
if [ ! -x "$venv/bin/python" ]; then
  had_venv=0; [ -e "$venv" ] && had_venv=1
  command -v "$py" >/dev/null 2>&1 || fail 2 "'$py' not found: install Python 3.10 or newer (or set PYTHON=/path/to/python3)"
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
    || fail 2 "$("$py" -c 'import sys; print("Python %d.%d" % sys.version_info[:2])' 2>/dev/null || echo "'$py'") is too old: Restorer needs Python 3.10 or newer (set PYTHON=/path/to/python3.X)"
  echo "creating virtual environment in $venv" >&2
  if ! "$py" -m venv "$venv" >&2 || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    [ "$had_venv" = 1 ] || rm -rf "$venv"   # only what this run made
    fail 2 "could not create a virtual environment with '$py -m venv' (on Debian/Ubuntu: sudo apt-get install python3-venv)"
  fi
fi
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing Restorer and its dependencies into .venv (torch==2.14.1, torchvision==0.29.1, PySide6, ...)." >&2
  echo "The first time this downloads a few GB (torch) and takes several minutes." >&2
  "$venv/bin/python" -m pip install -q --upgrade pip >&2 || true
  "$venv/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1 >&2 \
    || fail 1 "installing torch failed (pip's message is above); run the script again once that is fixed"
  "$venv/bin/python" -m pip install -q -e "$root[test]" >&2 \
    || fail 1 "installing Restorer's dependencies failed (pip's message is above); run the script again once that is fixed"
  echo "$want" > "$stamp"
fi
