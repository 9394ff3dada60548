"""How fast `genmodels serve` answers, and what its two views look like.

    python benchmarks/serve_latency.py [--checkpoint samples/checkpoints/iwae_mnist_grey]
                                       [--samples 8] [--repeats 20] [--screenshots docs/figures]

Serves the checkpoint on a free local port (the real HTTP server), then times ``POST
/api/inpaint`` with S completions by the model's default method on test digits with the top
half erased (end to end: JSON in and out, the classifier's probabilities included; after two
warm-up requests; median and 90th percentile of ``--repeats``), and ``POST /api/game`` (15
digits, 8 completions each). With ``--screenshots DIR``, headless Chromium (Debian's chromium
and chromium-driver) draws the inpainting view after one completion and the game view after
one round of guesses into DIR/serve_inpaint.png and DIR/serve_game.png.

Writes docs/results/serve_latency.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import threading
import time
import urllib.request
from pathlib import Path

import torch
from common import ROOT, write_between_markers

from genmodels.serve import ApiServer, service_for


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def timed(url: str, bodies: list[dict]) -> list[float]:
    seconds = []
    for body in bodies:
        start = time.perf_counter()
        post(url, body)
        seconds.append(time.perf_counter() - start)
    return seconds


def screenshots(url: str, folder: Path) -> list[Path]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1200,820"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    wait = WebDriverWait(browser, 300)
    paths = [folder / "serve_inpaint.png", folder / "serve_game.png"]
    try:
        browser.get(url)
        wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        browser.find_element(By.ID, "apply-mask").click()
        time.sleep(0.5)
        browser.find_element(By.ID, "complete").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#completions figure")) > 0)
        browser.save_screenshot(str(paths[0]))
        browser.find_element(By.ID, "tab-game").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#game .card")) == 15)
        for box, digit in zip(browser.find_elements(By.CSS_SELECTOR, "#game .guess"),
                              "721041495906901", strict=True):
            box.send_keys(digit)
        browser.find_element(By.ID, "check").click()
        wait.until(lambda b: "You:" in b.find_element(By.ID, "score").text)
        browser.save_screenshot(str(paths[1]))
    finally:
        browser.quit()
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path,
                        default=ROOT / "samples" / "checkpoints" / "iwae_mnist_grey")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--screenshots", type=Path)
    parser.add_argument("--results", type=Path,
                        default=ROOT / "docs" / "results" / "serve_latency.json")
    args = parser.parse_args()

    service = service_for(args.checkpoint)
    server = ApiServer(service, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mask = service.mask("top")["mask"]
    bodies = [{"image": service.digit(i)["image"], "mask": mask, "samples": args.samples,
               "seed": i} for i in range(args.repeats + 2)]
    inpaint = timed(server.url + "api/inpaint", bodies)[2:]
    game = timed(server.url + "api/game", [{"seed": s, "guesses": [None] * 15}
                                           for s in range(3)])
    results = {
        "checkpoint": str(args.checkpoint.relative_to(ROOT)) if args.checkpoint.is_relative_to(
            ROOT) else str(args.checkpoint),
        "method": service.info()["default_method"], "samples": args.samples,
        "inpaint_median_seconds": round(statistics.median(inpaint), 3),
        "inpaint_p90_seconds": round(sorted(inpaint)[int(0.9 * (len(inpaint) - 1))], 3),
        "inpaint_all_seconds": [round(s, 3) for s in inpaint],
        "game_answer_seconds": [round(s, 2) for s in game],
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                   f"torch {torch.__version__}",
        "command": "python benchmarks/serve_latency.py"
                   + (f" --screenshots {args.screenshots}" if args.screenshots else ""),
    }
    print(json.dumps(results, indent=2))
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    if args.results.resolve() == (ROOT / "docs" / "results" / "serve_latency.json").resolve():
        write_between_markers(ROOT / "docs" / "serve.md", (
            f"`{results['command']}` ({results['machine']}, nothing else running): "
            f"`POST /api/inpaint` with S = {args.samples} completions by {results['method']} "
            f"from `{results['checkpoint']}`, a test digit with its top half erased, end to end "
            f"over HTTP (JSON both ways, the classifier's probabilities included): median "
            f"**{results['inpaint_median_seconds']:.2f} s**, 90th percentile "
            f"{results['inpaint_p90_seconds']:.2f} s over {args.repeats} requests. One round of "
            f"the game (15 digits × 8 completions): "
            f"{statistics.median(game):.1f} s."), "serve-latency")
    if args.screenshots:
        for path in screenshots(server.url, args.screenshots):
            print(f"wrote {path}")
    server.shutdown()


if __name__ == "__main__":
    main()
