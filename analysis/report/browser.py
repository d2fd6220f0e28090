"""Headless Chromium for the report: a screenshot and the console errors of report.html, and the
layout measurements of the page at a given window width (scroll width, figure text size)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def screenshot_html(
    html: Path, png: Path, *, chromium: str = "chromium", size: str = "1280,2400", timeout_s: int = 90
) -> list[str]:
    """Open ``html`` in headless Chromium, save a PNG screenshot to ``png`` and return the console
    errors it logged (uncaught exceptions, console.error, failed loads); an empty list means clean.

    Raises FileNotFoundError when ``chromium`` is not on PATH (Debian: apt-get install chromium).
    """
    import tempfile

    exe = shutil.which(chromium)
    if exe is None:
        raise FileNotFoundError(
            f"{chromium!r} not found on PATH; install it (Debian: apt-get install chromium)"
        )
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                exe,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={size}",
                Path(html).resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
        )
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return [
        line
        for line in proc.stderr.splitlines()
        if ("CONSOLE" in line and ("Uncaught" in line or "ERROR:CONSOLE" in line or ":ERROR:" in line))
        or "net::ERR_" in line
    ]
