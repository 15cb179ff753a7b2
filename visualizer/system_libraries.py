"""The system libraries Qt's X11 platform plugin (xcb) loads, checked before Qt is imported.

On a minimal Linux some are missing (libxcb-cursor0 first, then libxcb-icccm4, libxcb-keysyms1,
...): Qt then prints a paragraph and aborts with a core dump. The launcher asks here first and
prints one line naming the Debian/Ubuntu packages to install. Imports nothing from Qt.
"""

from __future__ import annotations

import ctypes
import os
import sys

# What libqxcb.so and the Qt libraries it pulls in need from the system (their ELF NEEDED entries
# that PySide6's wheel does not bundle), with the Debian/Ubuntu package that provides each.
XCB_PLATFORM_LIBRARIES = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb() -> bool:
    """Whether Qt will open the window through X11 (xcb): Linux, and no other platform asked for."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    return sys.platform.startswith("linux") and (platform in ("", "xcb") or platform.startswith("xcb:"))


def missing_xcb_libraries() -> list[str]:
    """The sonames of XCB_PLATFORM_LIBRARIES that the dynamic loader cannot find."""
    return [soname for soname in XCB_PLATFORM_LIBRARIES if not _loads(soname)]


def missing_libraries_message(missing: list[str]) -> str:
    packages = " ".join(dict.fromkeys(XCB_PLATFORM_LIBRARIES[soname] for soname in missing))
    return (
        f"the window needs system libraries that are missing ({', '.join(missing)}): install them, "
        f"e.g. sudo apt-get install {packages}; the commands work without them (--help)"
    )
