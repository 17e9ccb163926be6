#!/usr/bin/env bash
# Before the window opens on Linux: are the system libraries Qt's X11 (xcb) plugin needs installed?
#
# Qt aborts with "Could not load the Qt platform plugin xcb" and names only libxcb-cursor0, whatever is
# missing. This script asks the dynamic linker (ldd) what the plugin lacks, maps each missing library to the
# package of this distribution and prints the one command that installs them. Exit 0 when nothing is
# missing (or the check does not apply), 3 when libraries are missing.
#
# Usage: check_qt_libs.sh PYTHON        (the venv's python, used to find PySide6)
# Test seams: RESTORER_OS_RELEASE (default /etc/os-release), RESTORER_QXCB (the plugin path), LDD.
set -uo pipefail
py="${1:-python3}"
[ "$(uname -s)" = "Linux" ] || exit 0
case "${QT_QPA_PLATFORM:-}" in ""|xcb|xcb:*) ;; *) exit 0 ;; esac
[ -n "${DISPLAY:-}" ] || [ -z "${WAYLAND_DISPLAY:-}" ] || exit 0   # Wayland session without XWayland: Qt picks wayland

plugin="${RESTORER_QXCB:-}"
if [ -z "$plugin" ]; then
  plugin=$("$py" -c 'import os, PySide6; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt", "plugins", "platforms", "libqxcb.so"))' 2>/dev/null) || exit 0
fi
[ -f "$plugin" ] || exit 0
ldd_cmd="${LDD:-ldd}"
missing=$("$ldd_cmd" "$plugin" 2>/dev/null | awk '/not found/ {print $1}' | sort -u)
# libxcb-cursor is loaded at run time by Qt >= 6.5 as well as linked; ask the linker cache too.
if [ -z "${LDD:-}" ] && command -v ldconfig >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libxcb-cursor\.so\.0'; then
  missing=$(printf '%s\nlibxcb-cursor.so.0\n' "$missing" | sed '/^$/d' | sort -u)
fi
[ -n "$missing" ] || exit 0

os_release="${RESTORER_OS_RELEASE:-/etc/os-release}"
family=""
if [ -r "$os_release" ]; then
  ids=$(. "$os_release" 2>/dev/null; echo "${ID:-} ${ID_LIKE:-}")
  case " $ids " in
    *" debian "*|*" ubuntu "*) family=debian ;;
    *" fedora "*|*" rhel "*|*" centos "*) family=fedora ;;
    *" arch "*) family=arch ;;
    *" suse "*|*" opensuse "*|*" opensuse-leap "*|*" opensuse-tumbleweed "*) family=suse ;;
  esac
fi

# soname -> package: debian fedora arch suse
pkg_for() {
  case "$1" in
    libxcb-icccm.so.4)        echo "libxcb-icccm4 xcb-util-wm xcb-util-wm libxcb-icccm4" ;;
    libxcb-keysyms.so.1)      echo "libxcb-keysyms1 xcb-util-keysyms xcb-util-keysyms libxcb-keysyms1" ;;
    libxcb-cursor.so.0)       echo "libxcb-cursor0 xcb-util-cursor xcb-util-cursor libxcb-cursor0" ;;
    libxcb-image.so.0)        echo "libxcb-image0 xcb-util-image xcb-util-image libxcb-image0" ;;
    libxcb-render-util.so.0)  echo "libxcb-render-util0 xcb-util-renderutil xcb-util-renderutil libxcb-render-util0" ;;
    libxcb-util.so.1)         echo "libxcb-util1 xcb-util xcb-util libxcb-util1" ;;
    libxcb-xkb.so.1)          echo "libxcb-xkb1 libxcb libxcb libxcb-xkb1" ;;
    libxcb-randr.so.0)        echo "libxcb-randr0 libxcb libxcb libxcb-randr0" ;;
    libxcb-shape.so.0)        echo "libxcb-shape0 libxcb libxcb libxcb-shape0" ;;
    libxcb-shm.so.0)          echo "libxcb-shm0 libxcb libxcb libxcb-shm0" ;;
    libxcb-sync.so.1)         echo "libxcb-sync1 libxcb libxcb libxcb-sync1" ;;
    libxcb-xfixes.so.0)       echo "libxcb-xfixes0 libxcb libxcb libxcb-xfixes0" ;;
    libxcb-render.so.0)       echo "libxcb-render0 libxcb libxcb libxcb-render0" ;;
    libxcb.so.1)              echo "libxcb1 libxcb libxcb libxcb1" ;;
    libxkbcommon-x11.so.0)    echo "libxkbcommon-x11-0 libxkbcommon-x11 libxkbcommon-x11 libxkbcommon-x11-0" ;;
    libxkbcommon.so.0)        echo "libxkbcommon0 libxkbcommon libxkbcommon libxkbcommon0" ;;
    libX11-xcb.so.1)          echo "libx11-xcb1 libX11-xcb libx11 libX11-xcb1" ;;
    libX11.so.6)              echo "libx11-6 libX11 libx11 libX11-6" ;;
    libEGL.so.1)              echo "libegl1 libglvnd-egl libglvnd libEGL1" ;;
    libGL.so.1|libGLX.so.0)   echo "libgl1 libglvnd-glx libglvnd libGL1" ;;
    libfontconfig.so.1)       echo "libfontconfig1 fontconfig fontconfig libfontconfig1" ;;
    libfreetype.so.6)         echo "libfreetype6 freetype freetype2 libfreetype6" ;;
    libdbus-1.so.3)           echo "libdbus-1-3 dbus-libs dbus libdbus-1-3" ;;
    *)                        echo "" ;;
  esac
}
col=0
case "$family" in debian) col=1 ;; fedora) col=2 ;; arch) col=3 ;; suse) col=4 ;; esac
pkgs=""
unknown=""
for lib in $missing; do
  row=$(pkg_for "$lib")
  if [ -z "$row" ] || [ "$col" = 0 ]; then
    unknown="$unknown $lib"
    continue
  fi
  p=$(echo "$row" | awk -v c="$col" '{print $c}')
  case " $pkgs " in *" $p "*) ;; *) pkgs="$pkgs $p" ;; esac
done
pkgs="${pkgs# }"

echo "Restorer cannot open its window: Qt's X11 plugin needs system libraries that are missing:" >&2
echo "  $(echo "$missing" | tr '\n' ' ')" >&2
if [ -n "$pkgs" ]; then
  sudo="sudo "
  [ "$(id -u)" = 0 ] && sudo=""
  case "$family" in
    debian) cmd="${sudo}apt-get install -y $pkgs" ;;
    fedora) cmd="${sudo}dnf install -y $pkgs" ;;
    arch)   cmd="${sudo}pacman -S --needed $pkgs" ;;
    suse)   cmd="${sudo}zypper install -y $pkgs" ;;
  esac
  echo "Install them with:" >&2
  echo "  $cmd" >&2
fi
if [ -n "$unknown" ]; then
  echo "Install the packages that provide:$unknown (see README, 'System libraries on Linux')." >&2
fi
echo "The command line (restorer upscale/inpaint/train ...) works without them." >&2
exit 3
