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
