"""run-app.sh's check of the system libraries Qt's X11 plugin needs (scripts/check_qt_libs.sh).

The check runs against a fake `ldd` and a fake os-release, so it does not depend on what this machine has.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_qt_libs.sh"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is for Linux")


def _run(tmp_path: Path, ldd_output: str, os_release: str) -> subprocess.CompletedProcess:
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"\x7fELF")
    ldd = tmp_path / "ldd"
    ldd.write_text(f"#!/bin/sh\ncat <<'X'\n{ldd_output}\nX\n")
    ldd.chmod(ldd.stat().st_mode | stat.S_IXUSR)
    rel = tmp_path / "os-release"
    rel.write_text(os_release)
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(RESTORER_QXCB=str(plugin), LDD=str(ldd), RESTORER_OS_RELEASE=str(rel), DISPLAY=":99")
    return subprocess.run(["bash", str(SCRIPT), sys.executable], capture_output=True, text=True, env=env, timeout=30)


MISSING = """\
\tlibQt6XcbQpa.so.6 => /x/libQt6XcbQpa.so.6 (0x1)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/libc.so.6 (0x2)"""


def test_missing_libraries_give_the_install_command_of_the_distribution(tmp_path):
    proc = _run(tmp_path, MISSING, 'ID=ubuntu\nID_LIKE=debian\n')
    assert proc.returncode == 3
    assert "apt-get install -y libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in proc.stderr.replace("sudo ", "")
    assert "libxcb-icccm.so.4" in proc.stderr

    fedora = _run(tmp_path, MISSING, 'ID=fedora\n')
    assert fedora.returncode == 3
    assert "dnf install -y xcb-util-cursor xcb-util-wm xcb-util-keysyms" in fedora.stderr

    arch = _run(tmp_path, MISSING, 'ID=arch\n')
    assert "pacman -S --needed xcb-util-cursor xcb-util-wm xcb-util-keysyms" in arch.stderr


def test_nothing_missing_passes_quietly(tmp_path):
    proc = _run(tmp_path, "\tlibc.so.6 => /lib/libc.so.6 (0x2)", "ID=debian\n")
    assert proc.returncode == 0
    assert proc.stderr == ""


def test_unknown_distribution_names_the_libraries(tmp_path):
    proc = _run(tmp_path, MISSING, "ID=gentoo\n")
    assert proc.returncode == 3
    assert "libxcb-keysyms.so.1" in proc.stderr and "install" in proc.stderr.lower()


# ----------------------------------------------------------------------------- scripts/ensure_venv.sh
def _fake(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _ensure_venv(tmp_path: Path, python: str) -> subprocess.CompletedProcess:
    """ensure_venv.sh copied into a throwaway checkout, so that it works on tmp_path/.venv, never the real one."""
    (tmp_path / "scripts").mkdir(exist_ok=True)
    (tmp_path / "scripts" / "ensure_venv.sh").write_text((ROOT / "scripts" / "ensure_venv.sh").read_text())
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    env = {**os.environ, "PYTHON": python}
    return subprocess.run(["bash", str(tmp_path / "scripts" / "ensure_venv.sh")], capture_output=True, text=True,
                          env=env, timeout=60)


def test_set_up_without_python_says_what_to_install(tmp_path):
    proc = _ensure_venv(tmp_path, str(tmp_path / "no-such-python3"))
    assert proc.returncode == 2
    assert "not found: install Python 3.10 or newer" in proc.stderr
    assert not (tmp_path / ".venv").exists()


def test_set_up_with_an_old_python_names_its_version(tmp_path):
    old = _fake(tmp_path / "bin" / "python3", 'case "$2" in *print*) echo "Python 3.8" ;; *) exit 1 ;; esac\n')
    proc = _ensure_venv(tmp_path, str(old))
    assert proc.returncode == 2
    assert "Python 3.8 is too old: Restorer needs Python 3.10 or newer" in proc.stderr
    assert not (tmp_path / ".venv").exists()


def test_set_up_without_the_venv_module_says_python3_venv_and_leaves_nothing_half_made(tmp_path):
    # what Debian's python3 without python3-venv does: -m venv makes bin/python, then fails at ensurepip
    real = sys.executable
    body = (f'if [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin"; '
            f'printf \'#!/bin/sh\\nexit 1\\n\' > "$3/bin/python"; chmod +x "$3/bin/python"; '
            f'echo "ensurepip is not available" >&2; exit 1; fi\nexec {real} "$@"\n')
    proc = _ensure_venv(tmp_path, str(_fake(tmp_path / "bin" / "python3", body)))
    assert proc.returncode == 2
    assert "python3-venv" in proc.stderr
    assert not (tmp_path / ".venv").exists()


def test_a_venv_without_pip_is_named_and_kept(tmp_path):
    _fake(tmp_path / ".venv" / "bin" / "python", "exit 1\n")  # no pip, no ensurepip
    proc = _ensure_venv(tmp_path, sys.executable)
    assert proc.returncode == 2
    assert "has no pip" in proc.stderr and "rm -rf" in proc.stderr
    assert (tmp_path / ".venv" / "bin" / "python").exists()  # the user's folder is not deleted behind their back


# ----------------------------------------------------------------------------- run-app.sh
def test_run_app_checks_the_window_libraries_only_for_the_window(tmp_path):
    (tmp_path / "run-app.sh").write_text((ROOT / "run-app.sh").read_text())
    _fake(tmp_path / "scripts" / "ensure_venv.sh", "exit 0\n")
    _fake(tmp_path / "scripts" / "check_qt_libs.sh", f'echo checked >> "{tmp_path}/log"\n')
    _fake(tmp_path / ".venv" / "bin" / "restorer", f'echo "restorer $*" >> "{tmp_path}/log"\n')

    def launched(*args: str) -> list[str]:
        (tmp_path / "log").write_text("")
        subprocess.run(["bash", str(tmp_path / "run-app.sh"), *args], check=True, timeout=30)
        return (tmp_path / "log").read_text().splitlines()

    assert launched() == ["checked", "restorer "]
    assert launched("photo.jpg") == ["checked", "restorer photo.jpg"]
    assert launched("--debug", "gui") == ["checked", "restorer --debug gui"]
    assert launched("upscale", "a.jpg") == ["restorer upscale a.jpg"]
    assert launched("-q", "upscale", "a.jpg") == ["restorer -q upscale a.jpg"]
    assert launched("--debug", "models") == ["restorer --debug models"]
    assert launched("--help") == ["restorer --help"]


def test_the_window_without_a_display_is_one_line_and_exit_2():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "restorer"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "no display" in proc.stderr and "restorer upscale" in proc.stderr
