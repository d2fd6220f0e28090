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


# The report is shown in an iframe of the wanted width (headless Chromium's window is at least
# 500 px wide); the parent page reads its layout once it has loaded.
MEASURE_PAGE = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="page" style="width:{width}px;height:900px;border:0" srcdoc="{srcdoc}"></iframe>
<script>
const frame = document.getElementById("page");
frame.addEventListener("load", () => {{
  const doc = frame.contentDocument;
  const figures = [...doc.querySelectorAll("img[data-width-px]")].map((img) => {{
    const shown = img.getBoundingClientRect().width;
    const natural = Number(img.dataset.widthPx);
    return {{shown: shown, natural: natural, min_text_px: Number(img.dataset.minFontPt) * 96 / 72 * shown / natural}};
  }});
  const tables = [...doc.querySelectorAll("figure.table .scroll")]
    .filter((box) => box.scrollWidth > box.clientWidth + 1)
    .map((box) => box.parentElement.id);
  document.body.setAttribute("data-measure", JSON.stringify({{
    scroll_width: doc.documentElement.scrollWidth, viewport: frame.contentWindow.innerWidth,
    figures: figures, tables_scrolling: tables}}));
}});
</script></body></html>"""


def measure_layout(html: Path, *, width: int, chromium: str = "chromium", timeout_s: int = 90) -> dict:
    """Open ``html`` in headless Chromium in a frame ``width`` CSS px wide. Returns scroll_width
    and viewport (the page needs horizontal scrolling when scroll_width > viewport),
    tables_scrolling (ids of the tables that scroll inside their box) and, per figure, its shown
    and natural width and min_text_px, the CSS pixel height of its smallest text."""
    import html as html_lib
    import json
    import re
    import tempfile

    exe = shutil.which(chromium)
    if exe is None:
        raise FileNotFoundError(
            f"{chromium!r} not found on PATH; install it (Debian: apt-get install chromium)"
        )
    srcdoc = html_lib.escape(Path(html).read_text(encoding="utf-8"), quote=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "measure.html"
        page.write_text(MEASURE_PAGE.format(width=width, srcdoc=srcdoc), encoding="utf-8")
        proc = subprocess.run(
            [
                exe,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp}/profile",
                f"--window-size={max(width + 40, 600)},1000",
                "--virtual-time-budget=10000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
        )
    found = re.search(r'data-measure="([^"]*)"', proc.stdout)
    if found is None:
        raise RuntimeError(f"chromium gave no measurement (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(html_lib.unescape(found.group(1)))
