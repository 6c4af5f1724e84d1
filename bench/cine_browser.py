"""Cine mode at video rate, measured where the user sees it: in Chromium.

    python -m bench.cine_browser [--runs 3] [--url http://127.0.0.1:7860/] [--json]

Starts the app (``python app.py``, the shipped EFSNet, its default inference path) unless ``--url`` is given, opens
the breast tab's "Cine loop (video)" page in Debian's Chromium (Playwright, ``/usr/bin/chromium``), clicks the
shipped synthetic cine loop (45 frames, 278x232) and "Segment video", for each network input (128 px as trained, and
256 px, the thesis's speed protocol). A ``MutationObserver`` in the page stamps every streamed frame as it is put into
the page. Reported per run:

* ``browser_fps``: frames shown / (time of the last frame shown - time of the click), in the page's own clock: the
  whole path (upload of nothing, queue, decode, network, overlay, JPEG, the event stream, the DOM update);
* ``frames_shown``: distinct frames the page displayed (45 when none was dropped);
* ``server_fps``: the FPS the tab itself reports.

With ``--json`` the last line is ``{"128": {...}, "256": {...}}`` with the median over ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SIZES = {"128": "128 px (as trained)", "256": "256 px (the thesis's speed protocol)"}
OBSERVER = """() => {
  const live = document.querySelector('#breast-video-live');
  const stats = document.querySelector('#breast-video-stats');
  const stale = live.querySelector('img.cine-frame')?.dataset.run;  // the previous run's last frame
  window.__cine = {frames: new Map(), click: null, streaming: false};
  new MutationObserver(() => {
    const img = live.querySelector('img.cine-frame');
    if (img && img.dataset.run !== stale && !window.__cine.frames.has(img.dataset.frame))
      window.__cine.frames.set(img.dataset.frame, performance.now());
  }).observe(live, {subtree: true, childList: true, attributes: true, characterData: true});
  new MutationObserver(() => {
    if (stats.innerText.startsWith('Streaming')) window.__cine.streaming = true;
  }).observe(stats, {subtree: true, childList: true, characterData: true});
}"""


def open_cine(page, url: str) -> None:
    """A fresh page on the breast tab's cine sub-tab with the example loop loaded."""
    page.goto(url)
    page.get_by_role("tab", name="Breast ultrasound (EFSNet)").wait_for()
    page.get_by_role("tab", name="Cine loop (video)").click()
    page.locator("#breast-video-run").wait_for()
    page.locator("#breast-video-examples button.gallery-item").first.click()
    page.locator("#breast-video-in video").wait_for(timeout=30_000)


def run_once(page, size: str, timeout_ms: int = 120_000) -> dict:
    """Click "Segment video" at ``size`` ("128" or "256") and time the streamed frames in the page."""
    page.get_by_label(SIZES[size]).check()
    page.evaluate(OBSERVER)
    page.evaluate("() => { window.__cine.click = performance.now(); }")
    page.locator("#breast-video-run").click()
    page.wait_for_function(  # this run's last frame shown and its final figures in place
        """() => window.__cine.frames.has('44') && window.__cine.streaming
                 && /Segmented \\d+ frames/.test(document.querySelector('#breast-video-stats').innerText)""",
        timeout=timeout_ms,
    )
    stamps = page.evaluate("() => ({click: window.__cine.click, times: [...window.__cine.frames.values()]})")
    text = page.locator("#breast-video-stats").inner_text()
    m = re.search(r"([\d.]+) FPS end to end", text)
    times = stamps["times"]
    elapsed_s = (max(times) - stamps["click"]) / 1e3 if times else float("nan")
    return {
        "frames_shown": len(times),
        "browser_fps": len(times) / elapsed_s if times else 0.0,
        "server_fps": float(m.group(1)) if m else None,
        "stats": text,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser("python -m bench.cine_browser", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--url", help="an app already running (default: start app.py on a free port)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from bench.load import free_port, start_app

    proc, url = None, args.url
    if not url:
        port = free_port()
        proc = start_app(port)
        url = f"http://127.0.0.1:{port}/"
    results: dict = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            open_cine(page, url)
            for size in SIZES:
                run_once(page, size)  # warm-up: the model loaded, its fast path prepared
                runs = [run_once(page, size) for _ in range(args.runs)]
                results[size] = {
                    "browser_fps": round(statistics.median(r["browser_fps"] for r in runs), 1),
                    "frames_shown": min(r["frames_shown"] for r in runs),
                    "server_fps": statistics.median(r["server_fps"] or 0.0 for r in runs),
                    "runs": [round(r["browser_fps"], 1) for r in runs],
                    "backend": re.search(r"on ([A-Za-z ]+)\)", runs[0]["stats"]).group(1),
                }
                r = results[size]
                print(f"{SIZES[size]:40s} {r['browser_fps']:6.1f} FPS in Chromium (runs {r['runs']}), "
                      f"{r['frames_shown']}/45 frames shown, tab reports {r['server_fps']:.1f} FPS, "
                      f"{r['backend']}")  # fmt: skip
            browser.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    if args.json:
        print(json.dumps(results))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
