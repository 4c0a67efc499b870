"""Make sure Debian's Chromium (and CJK fonts) are here for the browser tests.

`python -m deploy.browser ensure` exits 0 when `chromium`, `chromedriver` and a CJK font
are installed. If one is missing and this is Debian with root, it installs the packages
`chromium`, `chromium-driver` and `fonts-noto-cjk` (apt-get update once first); otherwise
it says what to do and exits 1. Playwright drives that binary (`executable_path`), so no
browser is ever downloaded by `playwright install`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = ("chromium", "chromium-driver", "fonts-noto-cjk")
CHROMIUM = "/usr/bin/chromium"
CJK_FONTS = Path("/usr/share/fonts/opentype/noto")


def missing() -> list[str]:
    """The Debian packages whose files are not here."""
    needed = []
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        needed.append("chromium")
    if shutil.which("chromedriver") is None:
        needed.append("chromium-driver")
    if not any(CJK_FONTS.glob("NotoSansCJK*")) and not any(CJK_FONTS.glob("NotoSerifCJK*")):
        needed.append("fonts-noto-cjk")
    return needed


def ensure() -> int:
    needed = missing()
    if not needed:
        return 0
    if not (os.path.exists("/etc/debian_version") and os.geteuid() == 0):
        print(f"The browser tests need {', '.join(needed)}.\n"
              f"On Debian: sudo apt-get install {' '.join(PACKAGES)}", file=sys.stderr)
        return 1
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("+ apt-get update", flush=True)
    subprocess.call(["apt-get", "update", "-q"], env=env)
    print(f"+ apt-get install {' '.join(needed)}", flush=True)
    if subprocess.call(["apt-get", "install", "-y", "-q", *needed], env=env):
        print(f"Installing {', '.join(needed)} failed; install them by hand.", file=sys.stderr)
        return 1
    still = missing()
    if still:
        print(f"Still missing after install: {', '.join(still)}", file=sys.stderr)
        return 1
    print("Chromium is ready.")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["ensure"]:
        sys.exit("usage: python -m deploy.browser ensure")
    sys.exit(ensure())
