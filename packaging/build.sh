#!/usr/bin/env bash
# Build the double-clickable one-folder app with PyInstaller (see packaging/README.md).
#
#   packaging/build.sh              dist/Restorer/Restorer      torch from .venv, CUDA libraries included
#   packaging/build.sh --cpu-only   dist/Restorer-cpu/Restorer  CPU-only torch (build/venv-cpu), no CUDA libraries
#
# Options:
#   --cpu-only    build the CPU-only variant
#   --clean       wipe PyInstaller's work folder and cache first
#   --skip-test   do not run `<bundle> --self-test` afterwards
#
# Environment:
#   RESTORER_BUILD_PYTHON  Python for the full build (default: .venv/bin/python, made by scripts/ensure_venv.sh)
#   RESTORER_CPU_TORCH     pip requirement(s) of the CPU-only torch (default: "torch==2.14.1+cpu torchvision==0.29.1+cpu")
#   RESTORER_CPU_INDEX     extra pip index holding them (default: https://download.pytorch.org/whl/cpu; "" = none)
#
# pyinstaller is a build tool, installed into the build environment when missing; it is not
# a dependency of the app. Build outputs go to build/ and dist/ (both git-ignored).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cpu_only=0
clean=""
run_test=1
for arg in "$@"; do
  case "$arg" in
    --cpu-only) cpu_only=1 ;;
    --clean) clean="--clean" ;;
    --skip-test) run_test=0 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n== %s\n' "$*" >&2; }

# ----------------------------------------------------------------------------- build environment
if [ "$cpu_only" = 1 ]; then
  name="Restorer-cpu"
  work="build/pyinstaller-cpu"
  venv="$root/build/venv-cpu"
  py="$venv/bin/python"
  cpu_torch="${RESTORER_CPU_TORCH-torch==2.14.1+cpu torchvision==0.29.1+cpu}"
  cpu_index="${RESTORER_CPU_INDEX-https://download.pytorch.org/whl/cpu}"
  base_py="python3"
  if [ -x "$root/.venv/bin/python" ]; then
    base_py="$("$root/.venv/bin/python" -c 'import sys, os; print(os.path.join(sys.base_prefix, "bin", "python3"))')"
  fi
  stamp="$venv/.restorer-cpu-stamp"
  want="$cpu_torch|$cpu_index|$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ ! -x "$py" ]; then
    say "creating the CPU-only build environment $venv"
    "$base_py" -m venv "$venv"
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing CPU-only torch into $venv: $cpu_torch"
    index_args=()
    if [ -n "$cpu_index" ]; then index_args=(--extra-index-url "$cpu_index"); fi
    # shellcheck disable=SC2086  # the requirement list is meant to split
    if ! "$py" -m pip install -q --retries 2 "${index_args[@]}" $cpu_torch; then
      echo "build.sh: could not install '$cpu_torch'${cpu_index:+ from $cpu_index}." >&2
      echo "  Set RESTORER_CPU_TORCH (and RESTORER_CPU_INDEX) to a CPU-only torch you can reach," >&2
      echo "  e.g. RESTORER_CPU_INDEX= RESTORER_CPU_TORCH='torch==2.13.0+cpu' for a local wheel." >&2
      exit 1
    fi
    # the app's other dependencies, at the versions of .venv when there is one (no CUDA in any)
    pins=()
    if [ -x "$root/.venv/bin/python" ]; then
      mapfile -t pins < <("$root/.venv/bin/python" -m pip freeze 2>/dev/null \
        | grep -iE '^(pyside6[-_]essentials|shiboken6|pillow|numpy|platformdirs)==' || true)
    fi
    [ "${#pins[@]}" -gt 0 ] || pins=("PySide6_Essentials>=6.6" "pillow>=10.0" "numpy>=1.24" "platformdirs>=3.0")
    "$py" -m pip install -q "${pins[@]}"
    echo "$want" > "$stamp"
  fi
  "$py" -c 'import torch, sys; sys.exit("build.sh: build/venv-cpu has a CUDA torch (%s)" % torch.__version__) if torch.version.cuda else print("CPU-only torch", torch.__version__)'
  export RESTORER_CPU_ONLY=1
else
  name="Restorer"
  work="build/pyinstaller"
  py="${RESTORER_BUILD_PYTHON:-$root/.venv/bin/python}"
  if [ ! -x "$py" ]; then
    say "no $py: setting up .venv"
    "$root/scripts/ensure_venv.sh"
    py="$root/.venv/bin/python"
  fi
  export RESTORER_CPU_ONLY=0
fi
export RESTORER_BUNDLE_NAME="$name"

if ! "$py" -c 'import PyInstaller' 2>/dev/null; then
  say "installing pyinstaller (build tool only) into $("$py" -c 'import sys; print(sys.prefix)')"
  "$py" -m pip install -q "pyinstaller>=6.10"
fi

if [ ! -f resources/icons/restorer.png ] || [ ! -f resources/icons/restorer.ico ]; then
  say "drawing the app icon"
  "$py" packaging/make_icon.py
fi

# ----------------------------------------------------------------------------- build
say "building dist/$name with $("$py" -m PyInstaller --version) ($(date '+%H:%M:%S'))"
start=$SECONDS
"$py" -m PyInstaller --noconfirm $clean --log-level WARN \
  --distpath dist --workpath "$work" packaging/restorer.spec
build_s=$((SECONDS - start))
exe="dist/$name/Restorer"
[ -x "$exe" ] || exe="dist/$name/Restorer.exe"
say "built $exe in ${build_s} s"

status=0
if [ "$run_test" = 1 ]; then
  say "self-test of the bundle: $exe --self-test"
  t0=$SECONDS
  if "$exe" --self-test; then :; else status=$?; echo "build.sh: the bundle's self-test FAILED" >&2; fi
  echo "self-test took $((SECONDS - t0)) s" >&2
fi

# ----------------------------------------------------------------------------- sizes
say "bundle sizes"
for d in dist/Restorer dist/Restorer-cpu; do
  if [ -d "$d" ]; then
    cuda_libs=$(find "$d" -type f \( -name 'libcu*' -o -name 'libnccl*' -o -name 'libnv*' -o -name 'libtorch_cuda*' \) | wc -l)
    printf '%s\t%s\t(%s CUDA/NVIDIA libraries)\n' "$(du -sh "$d" | cut -f1)" "$d" "$cuda_libs"
  fi
done
if [ -d dist/Restorer ] && [ -d dist/Restorer-cpu ]; then
  full=$(du -sm dist/Restorer | cut -f1)
  cpu=$(du -sm dist/Restorer-cpu | cut -f1)
  echo "CPU-only is $((full - cpu)) MiB smaller ($((100 * cpu / full))% of the full bundle)"
fi
echo "build time: ${build_s} s"
exit "$status"
