"""`genmodels serve`: the JSON API on a real HTTP server with the shipped grey-digit VAE, its
bad requests, and the page driven end to end in headless Chromium (Debian's chromium and
chromium-driver; .ci/run installs them and sets GENMODELS_REQUIRE_BROWSER=1 so that CI runs
the browser test instead of skipping it)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import torch

from genmodels.cli import main
from genmodels.serve import ApiServer, service_for
from genmodels.serve.service import GAME_DIGITS

ROOT = Path(__file__).resolve().parents[1]
VAE = ROOT / "samples" / "checkpoints" / "iwae_mnist_grey"
GAN = ROOT / "samples" / "checkpoints" / "gan_ring"


@pytest.fixture(scope="module")
def service():
    return service_for(VAE)


@pytest.fixture(scope="module")
def server(service):
    server = ApiServer(service, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def call(server: ApiServer, path: str, body: object = None, raw: bytes | None = None
         ) -> tuple[int, dict]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url.rstrip("/") + path, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_inpaint_keeps_observed_pixels_and_reads_each_completion(server, service):
    _, digit = call(server, "/api/digit?index=7")
    _, mask = call(server, "/api/mask?kind=top")
    status, answer = call(server, "/api/inpaint", {"image": digit["image"], "mask": mask["mask"],
                                                   "samples": 5, "seed": 3})
    assert status == 200 and answer["method"] == "mwg" and len(answer["completions"]) == 5
    assert answer["options"] == {"final": "mean"}  # the command line's default
    x, m = torch.tensor(digit["image"]), torch.tensor(mask["mask"])
    completions = torch.tensor(answer["completions"])  # (5, 784)
    assert torch.equal(completions * m, x * m.expand_as(completions))  # observed: unchanged
    assert (completions * (1 - m) != x * (1 - m)).any()  # the missing half was filled in
    probabilities = torch.tensor(answer["probabilities"])
    assert torch.allclose(probabilities.sum(1), torch.ones(5), atol=1e-3)
    top = [t["class"] for t in answer["top"]]
    assert top == probabilities.argmax(1).tolist()
    assert answer["guess"] == Counter(top).most_common(1)[0][0]
    assert digit["label"] == int(service.labels[7])
    # the same request and seed give the same completions
    assert call(server, "/api/inpaint", {"image": digit["image"], "mask": mask["mask"],
                                         "samples": 5, "seed": 3})[1]["completions"] \
        == answer["completions"]


def test_the_game_hides_the_truth_then_scores_both_players(server, service):
    status, game = call(server, "/api/game?seed=4&mask=top")
    assert status == 200 and len(game["digits"]) == GAME_DIGITS
    assert "truth" not in json.dumps(game) and "label" not in json.dumps(game)
    erased = torch.tensor([d["image"] for d in game["digits"]]) * (
        1 - torch.tensor([d["mask"] for d in game["digits"]]))
    assert not erased.any()  # missing pixels carry no value
    guesses = [0] * 7 + [None] * 8
    status, result = call(server, "/api/game", {"seed": 4, "guesses": guesses, "samples": 3})
    assert status == 200
    assert result["person_score"] == sum(g == y for g, y in zip(guesses, result["truth"],
                                                                  strict=True))
    assert result["model_score"] == sum(g == y for g, y in zip(
        result["model_guesses"], result["truth"], strict=True))
    assert result["model_score"] >= 10  # the shipped VAE reads most half digits
    # the truth is the labelled test digits the seed drew, their images those of the game
    index = torch.randperm(len(service.images), generator=torch.Generator().manual_seed(4))
    assert result["truth"] == service.labels[index[:GAME_DIGITS]].tolist()


@pytest.mark.parametrize(("path", "body", "status", "says"), [
    ("/api/inpaint", b"{not json", 400, "not valid JSON"),
    ("/api/inpaint", [1, 2], 400, "JSON object"),
    ("/api/inpaint", {"image": [0.5] * 10, "mask": "top"}, 400, "784 numbers"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": [1] * 10}, 400, "784 numbers"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": [1] * 784}, 400, "every pixel observed"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": [0] * 784}, 400, "erases every pixel"),
    ("/api/inpaint", {"image": [2.0] * 784, "mask": "top"}, 400, "[0, 1]"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": "top", "method": "repaint"}, 400,
     "for a diffusion model"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": "top", "method": "nope"}, 400,
     "unknown inpainting method"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": "top", "samples": 0}, 400, "'samples'"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": "top", "samples": 10**6}, 400, "'samples'"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": "top", "colour": 1}, 400, "unknown field"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": "top", "jump_length": 3}, 400,
     "jump_length does not apply to method mwg"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": "top", "final": "median"}, 400, "'final'"),
    ("/api/inpaint", {"image": [0.5] * 784, "mask": "top", "steps": 0}, 400, "'steps'"),
    ("/api/inpaint", b"[" + b"0," * 600_000 + b"0]", 413, "at most"),
    ("/api/game", {"seed": 1, "guesses": [1, 2]}, 400, "15 digits"),
    ("/api/game?seed=-1", None, 400, "seed"),
    ("/api/game?seed=1&mask=half", None, 400, "unknown game mask"),
    ("/api/digit?index=seven", None, 400, "integer"),
    ("/api/nothing", None, 404, "no such address"),
])
def test_bad_requests_get_a_4xx_and_the_server_stays_up(server, path, body, status, says):
    raw = body if isinstance(body, bytes) else None
    got, answer = call(server, path, None if raw else body, raw)
    assert got == status and says in answer["error"]
    assert call(server, "/api/info")[0] == 200


def test_a_bug_is_a_500_with_its_message_and_the_server_keeps_serving(server, monkeypatch):
    def broken() -> dict:
        raise RuntimeError("boom")

    monkeypatch.setattr(server.service, "info", broken)
    status, answer = call(server, "/api/info")
    assert status == 500 and "RuntimeError: boom" in answer["error"]
    monkeypatch.undo()
    assert call(server, "/api/info")[0] == 200


def test_serve_refuses_a_model_that_cannot_inpaint(capsys):
    assert main(["serve", str(GAN)]) == 2
    err = capsys.readouterr().err
    assert "the page inpaints with a VAE, a diffusion or a flow-matching model" in err
    assert err.count("\n") == 1


def test_serve_says_where_it_listens_and_a_busy_port_is_one_line(server, capsys):
    port = server.server_address[1]
    assert main(["serve", str(VAE), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "--port" in err and err.count("\n") == 1


# --- the page, in a real browser -----------------------------------------------------------
def chromium():
    """A headless Chromium driven by Debian's chromedriver; skip (or fail where the browser
    is required, as in CI) without them."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        binary = None
    if binary is None or driver is None:
        if os.environ.get("GENMODELS_REQUIRE_BROWSER") == "1":
            pytest.fail("GENMODELS_REQUIRE_BROWSER=1 but chromium, chromedriver or selenium "
                        "is missing: apt-get install -y chromium chromium-driver")
        pytest.skip("needs chromium and chromium-driver (apt-get install -y chromium "
                    "chromium-driver) and selenium")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def test_the_page_draws_erases_completes_and_plays_a_game(server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium()
    try:
        wait = WebDriverWait(browser, 120)
        browser.get(server.url)
        wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        editor = browser.find_element(By.ID, "editor")
        browser.find_element(By.ID, "clear").click()
        browser.find_element(By.CSS_SELECTOR, "input[value=draw]").click()
        # a vertical stroke: a "1" down the middle of the 280 × 280 canvas (10 px a pixel)
        ActionChains(browser).move_to_element_with_offset(editor, 0, -100).click_and_hold() \
            .move_by_offset(0, 100).move_by_offset(0, 100).release().perform()
        drawn = browser.execute_script("return Array.from(window.genmodels.image)")
        assert sum(v == 1 for v in drawn) >= 20
        browser.find_element(By.CSS_SELECTOR, "input[value=erase]").click()
        ActionChains(browser).move_to_element_with_offset(editor, -120, -120).click_and_hold() \
            .move_by_offset(240, 0).release().perform()
        mask = browser.execute_script("return Array.from(window.genmodels.mask)")
        assert 0 < mask.count(0) < len(mask)
        samples = browser.find_element(By.ID, "samples")
        samples.clear()
        samples.send_keys("4")
        browser.find_element(By.ID, "complete").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#completions figure")) == 4)
        last = browser.execute_script("return window.genmodels.last")
        image = browser.execute_script("return Array.from(window.genmodels.image)")
        for completion in last["completions"]:
            assert all(abs(c - v) < 1e-4 for c, v, m in zip(completion, image, mask,
                                                             strict=True) if m)
        captions = [f.text for f in browser.find_elements(By.CSS_SELECTOR,
                                                          "#completions figcaption")]
        assert all("%" in text for text in captions)
        assert "The model's guess" in browser.find_element(By.ID, "summary").text
        # the same page shows an error line for a bad request, and keeps working
        samples.clear()
        samples.send_keys("100000")
        browser.find_element(By.ID, "complete").click()
        wait.until(lambda b: b.find_element(By.ID, "error").is_displayed())
        assert "'samples'" in browser.find_element(By.ID, "error").text

        browser.find_element(By.ID, "tab-game").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#game .card")) == 15)
        guesses = browser.find_elements(By.CSS_SELECTOR, "#game .guess")
        for box, digit in zip(guesses, "123456789012345", strict=True):
            box.send_keys(digit)
        browser.find_element(By.ID, "check").click()
        wait.until(lambda b: "You:" in b.find_element(By.ID, "score").text)
        result = browser.execute_script("return window.genmodels.gameAnswer")
        mine = sum(int(g) == y for g, y in zip("123456789012345", result["truth"], strict=True))
        assert f"You: {mine} / 15" in browser.find_element(By.ID, "score").text
        assert f"the model: {result['model_score']} / 15" in \
            browser.find_element(By.ID, "score").text
        assert not browser.find_element(By.ID, "error").is_displayed()
    finally:
        browser.quit()
