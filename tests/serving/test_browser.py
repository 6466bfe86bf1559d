"""The page in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium):
on a real tiny Q-HEART model folder: pick an example and ask a suggested question, then upload a WFDB pair, see its plot, ask, and read
the answer, the options' scores and the retrieved reports. Saves a screenshot (path printed).

The browser is found on PATH; where it is missing and we run as root with apt-get, the test
installs it (as `make setup` does); it skips, saying why, only where no browser can be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.data.ecg_fixtures import PTBXL_NAMES, synthetic_ecg, write_wfdb_record

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "runs" / "screenshots"
QUESTION = "What leads show ST elevation?"


def _browser_paths() -> tuple[str | None, str | None]:
    browser = next((p for name in ("chromium", "chromium-browser", "google-chrome")
                    if (p := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return browser, driver


def _install_browser() -> str:
    """apt-get install chromium chromium-driver, where we may; returns what happened."""
    if os.environ.get("QHEART_NO_BROWSER_INSTALL"):
        return "install disabled by QHEART_NO_BROWSER_INSTALL"
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return "not root or no apt-get, so no install was tried"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, timeout=300, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], check=True,
                       capture_output=True, timeout=900, env=env)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"apt-get install chromium chromium-driver failed: {exc}"
    return "installed with apt-get"


@pytest.fixture(scope="module")
def driver():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install 'qheart[serve]')")
    browser, chromedriver = _browser_paths()
    how = "found on PATH"
    if browser is None or chromedriver is None:
        how = _install_browser()
        browser, chromedriver = _browser_paths()
    if browser is None or chromedriver is None:
        pytest.skip(f"no headless Chromium available (chromium={browser}, chromedriver={chromedriver}; {how})")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1900", "--force-device-scale-factor=1", "--no-first-run"):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=chromedriver)  # never Selenium Manager downloads
    drv = webdriver.Chrome(options=options, service=service)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def server(driver, tiny_model_dir: Path):
    """uvicorn on 127.0.0.1 in a thread, serving a real tiny Q-HEART model folder."""
    from qheart.api import QHeart
    from qheart.serving.app import create_app
    from qheart.serving.background import serve_in_thread
    from qheart.serving.settings import ServeSettings

    model = QHeart.from_pretrained(tiny_model_dir, device="cpu")
    app = create_app(model, ServeSettings(n_examples=3, token_env="QHEART_NO_SUCH_VAR"))
    with serve_in_thread(app) as url:
        yield url, model


def _wait(drv, condition, timeout_s: float = 60.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, timeout_s).until(lambda d: condition(d))


def _choose_files(drv, paths: list[str]) -> None:
    from selenium.webdriver.common.by import By

    field = drv.find_element(By.ID, "files")
    drv.execute_script("arguments[0].value = '';", field)  # chromedriver appends to a selection
    field.send_keys("\n".join(paths))


def _answered(drv):
    from selenium.webdriver.common.by import By

    panel = drv.find_element(By.ID, "answer-panel")
    return panel.get_attribute("data-ready") == "true" and panel.is_displayed()


def test_page_answers_an_example_and_an_uploaded_record(driver, server, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    url, model = server
    driver.get(url + "/")
    assert "Q-HEART" in driver.title
    # --- an example and a suggested question
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#examples button[data-example]"))
    examples = driver.find_elements(By.CSS_SELECTOR, "#examples button[data-example]")
    assert len(examples) == 3
    examples[0].click()
    _wait(driver, lambda d: d.execute_script(
        "const i = document.getElementById('ecg-plot'); return i.complete && i.naturalWidth > 500;"))
    suggestion = driver.find_elements(By.CSS_SELECTOR, "#suggestions button")[0]
    suggested = suggestion.text
    suggestion.click()
    assert driver.find_element(By.ID, "question").get_attribute("value") == suggested
    driver.find_element(By.ID, "ask-button").click()
    _wait(driver, _answered)
    assert driver.find_element(By.ID, "answer").text.strip()
    assert driver.find_elements(By.CSS_SELECTOR, "#scores tbody tr")

    # --- an uploaded WFDB pair
    signal = synthetic_ecg(12, 500, 10, seed=11)
    record = write_wfdb_record(tmp_path / "upload", "patient7", signal, 500, PTBXL_NAMES)
    paths = [str(record.with_suffix(".hea")), str(record.with_suffix(".dat"))]
    _choose_files(driver, paths)
    _wait(driver, lambda d: "patient7.hea" in d.find_element(By.ID, "ecg-label").text)
    _wait(driver, lambda d: d.execute_script(
        "const i = document.getElementById('ecg-plot'); return i.complete && i.naturalWidth > 500;"))
    box = driver.find_element(By.ID, "question")
    box.clear()
    box.send_keys(QUESTION)
    driver.find_element(By.ID, "ask-button").click()
    _wait(driver, lambda d: _answered(d) and d.find_element(By.ID, "answer-meta").text.count("single-query"))

    expected = model.ask(record.with_suffix(".hea"), QUESTION)
    assert driver.find_element(By.ID, "answer").text == ", ".join(expected.answer)
    rows = driver.find_elements(By.CSS_SELECTOR, "#scores tbody tr")
    assert len(rows) == len(expected.options) == 12
    top = max(expected.scores, key=expected.scores.get)
    assert rows[0].find_elements(By.TAG_NAME, "td")[0].text == top  # sorted by score
    reports = driver.find_elements(By.CSS_SELECTOR, "#reports li")
    assert len(reports) == len(expected.reports) == 3
    assert [r.text.split(" ", 1)[0] for r in reports] == [f"{r.similarity:.3f}" for r in expected.reports]
    assert not driver.find_element(By.ID, "error").is_displayed()

    # --- an unreadable upload shows the service's error and the page keeps working
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an array")
    _choose_files(driver, [str(bad)])
    _wait(driver, lambda d: d.find_element(By.ID, "error").is_displayed())
    assert "bad.npy" in driver.find_element(By.ID, "error").text
    _choose_files(driver, paths)
    _wait(driver, lambda d: not d.find_element(By.ID, "error").is_displayed()
          and "patient7.hea" in d.find_element(By.ID, "ecg-label").text)
    driver.find_element(By.ID, "ask-button").click()
    _wait(driver, _answered)

    shot = tmp_path / "qheart-page.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(900, int(height) + 40))
    assert driver.save_screenshot(str(shot))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    kept = SCREENSHOTS / shot.name
    shutil.copyfile(shot, kept)
    print(f"screenshot: {kept} (and {shot})")
    assert shot.stat().st_size > 20_000


def test_api_docs_render_in_the_browser(driver, server) -> None:
    from selenium.webdriver.common.by import By

    url, _ = server
    driver.get(url + "/docs")
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    paths = {e.get_attribute("data-path") or e.text for e in
             driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/v1/ask" in paths, paths
