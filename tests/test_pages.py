"""The leaderboard page and the refine report, checked in headless Chromium by what it draws: a 1300-pixel window
shows every table column and does not scroll sideways, the charts are matplotlib's (intervals as error bars, not a
filled region; round percentage ticks; one legend entry per series), and the screenshot has the series' colours
where the chart is."""

from __future__ import annotations

import datetime
import re
import shutil
import sys
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
VALIDATION, TEST, BAR = (59, 111, 216), (216, 116, 59), (59, 111, 216)


def refine_state(iterations: int = 4) -> dict:
    scores = [(0.05, 0.04), (0.16, 0.148), (0.21, 0.193), (0.2, 0.187)][:iterations]
    return {"config": {"tasks": "spider-dev", "method": "codelutra", "mode": "pairs", "model": "smollm2-135m",
                       "train_from": "current"}, "stopped": "max iterations", "best": 2,
            "iterations": [{"iteration": i, "model": f"models/sql-it{i}-with-a-long-folder-name", "release":
                            f"releases/spider-dev-smollm2-135m-it{i}/0.1.{i}" if i else None,
                            "sampling_pass_rate": 0.1 * i if i else None, "pairs": 1234 * i if i else None,
                            "tasks_all_correct": 3, "tasks_no_correct": 200,
                            "train": {"loss": 0.51234, "reward_margin": 0.21234} if i else {},
                            "eval": {"validation": {"value": v, "ci95": [v - 0.03, v + 0.03]},
                                     "test": {"value": t, "ci95": [t - 0.035, t + 0.04],
                                              "metric": "execution_accuracy"}},
                            "stages_s": {"build": 1234.5, "train": 2345.6, "eval": 345.6}}
                           for i, (v, t) in enumerate(scores)]}


def board_rows() -> list[dict]:
    base = {"suite": "spider-dev", "split": "test", "suite_hash": "h", "metric": "execution_accuracy", "tasks": 300,
            "n": 1, "k": 1, "temperature": 0.0, "date": datetime.datetime(2026, 11, 23), "model_revision": "r",
            "dataset_version": "0.1.0", "method": "codelutra", "base_model": "smollm2-135m"}
    rows = []
    for i, (model, value) in enumerate([("smollm2-135m", 0.04), ("models/sql-it1", 0.148),
                                        ("models/sql-it2-with-a-rather-long-name", 0.193)]):
        rows.append({**base, "model": model, "value": value, "ci_low": max(0.0, value - 0.04),
                     "ci_high": value + 0.045, "delta": None if i == 0 else value - 0.04,
                     "dataset": "" if i == 0 else "spider-dev-smollm2-135m", "config_hash": str(i)})
    return rows


@pytest.fixture
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and CHROMEDRIVER, "chromium and chromedriver are missing: `make test` installs them"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1300,900", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield browser
    browser.quit()


def _colour_pixels(png: Path, box: dict, colour: tuple[int, int, int]) -> int:
    import numpy as np
    from PIL import Image

    image = Image.open(png).convert("RGB")
    left, top = int(box["x"]), int(box["y"])
    right, bottom = min(image.width, int(box["x"] + box["width"])), min(image.height, int(box["y"] + box["height"]))
    pixels = np.asarray(image.crop((left, top, right, bottom)), dtype=np.int16)
    return int((np.abs(pixels - np.array(colour, dtype=np.int16)) <= 12).all(axis=-1).sum())


def _check_layout(driver) -> None:
    # the page does not scroll sideways, and the table's last column is inside the window
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    right = driver.execute_script(
        "const cells = document.querySelectorAll('table tr > *:last-child');"
        "return Math.max(...Array.from(cells).map(c => c.getBoundingClientRect().right));")
    assert right <= driver.execute_script("return window.innerWidth")


@pytest.mark.skipif(sys.platform != "linux", reason="Debian's chromium is installed by make on Linux")
def test_refine_report_draws_intervals_as_error_bars_with_round_ticks(driver, tmp_path):
    from selenium.webdriver.common.by import By

    from codelutra_data.trainers.refine.report import write_report

    page = write_report(tmp_path, refine_state())
    html = page.read_text()
    assert "<polyline" not in html and "<polygon" not in html  # nothing filled between iterations
    driver.get(page.as_uri())
    _check_layout(driver)
    svg = driver.find_element(By.CSS_SELECTOR, "figure.chart svg")
    texts = [t.text for t in svg.find_elements(By.TAG_NAME, "text")]
    assert texts.count("validation") == 1 and texts.count("test") == 1  # one legend entry each
    ticks = [t for t in texts if re.fullmatch(r"\d+(\.\d+)?%", t)]
    assert len(ticks) >= 3 and all(float(t[:-1]) % 5 == 0 for t in ticks), ticks  # 0%, 5%, 10%, ... not 9%, 17%
    assert [t for t in texts if t.isdigit()] == ["0", "1", "2", "3"]  # one tick per iteration
    for key in ("validation", "test"):
        assert svg.find_elements(By.CSS_SELECTOR, f"g[id='series-{key}']")
    shot = tmp_path / "report.png"
    assert driver.save_screenshot(str(shot))
    box = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", svg)
    assert box["width"] > 500
    assert _colour_pixels(shot, box, VALIDATION) > 300 and _colour_pixels(shot, box, TEST) > 300
    # the interval is a thin error bar: the series' colour covers a small part of the chart, not a wedge
    assert _colour_pixels(shot, box, VALIDATION) < 0.05 * box["width"] * box["height"]


@pytest.mark.skipif(sys.platform != "linux", reason="Debian's chromium is installed by make on Linux")
def test_leaderboard_page_at_1300_pixels(driver, tmp_path):
    from selenium.webdriver.common.by import By

    from codelutra_data.benchmarks.leaderboard import render_html

    page = render_html(board_rows(), tmp_path)
    driver.get(page.as_uri())
    _check_layout(driver)
    svg = driver.find_element(By.CSS_SELECTOR, "figure.chart svg")
    assert svg.get_attribute("role") == "img"
    assert len(svg.find_elements(By.CSS_SELECTOR, "g[id^='bar-']")) == 3
    assert len(svg.find_elements(By.CSS_SELECTOR, "g[id$='-base']")) == 1
    texts = [t.text for t in svg.find_elements(By.TAG_NAME, "text")]
    assert {"19.3%", "14.8%", "4.0%"} <= set(texts)
    shot = tmp_path / "board.png"
    assert driver.save_screenshot(str(shot))
    box = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", svg)
    assert _colour_pixels(shot, box, BAR) > 2000


DOLLAR_NAMES = ["a$x^2$b", "$\\frac{1}{0}$", "50$ model", "$\\foo$", "a$_$b", "[red]y"]
MARKUP_NAME = "x[/bold]"  # the chart shows a name's last path part ("bold]"), the terminal table all of it


def _svg_texts(page: str) -> list[str]:
    import html

    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", page)]


def test_names_from_the_data_are_drawn_literally(tmp_path):
    """A model named `$\\foo$` made matplotlib parse math text and `leaderboard --html` crash for everyone reading
    that board (and `a$x^2$b` was drawn as a formula), and `x[/bold]` crashed the terminal table (rich markup):
    every name from the data is drawn as written."""
    import subprocess

    from codelutra_data.benchmarks.store import write_rows

    rows = [{**board_rows()[0], "model": name, "suite": "$\\bad$ suite", "metric": "$^$", "value": 0.1 * (i + 1),
             "ci_low": 0.1 * i, "ci_high": 0.1 * (i + 2), "config_hash": f"c{i}"}
            for i, name in enumerate([*DOLLAR_NAMES, MARKUP_NAME])]
    write_rows(tmp_path / "results.duckdb", rows)
    done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "leaderboard", "--store",
                           str(tmp_path / "results.duckdb"), "--html", str(tmp_path / "board")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    page = (tmp_path / "board" / "index.html").read_text()
    assert set(DOLLAR_NAMES) <= set(_svg_texts(page)), _svg_texts(page)
    table = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "leaderboard", "--store",
                            str(tmp_path / "results.duckdb")], capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr[-2000:]
    assert all(name in table.stdout for name in [*DOLLAR_NAMES, MARKUP_NAME]), table.stdout
    assert "$\\bad$ suite" in table.stdout

    from codelutra_data.trainers.refine.report import write_report

    state = refine_state(2)
    for iteration in state["iterations"]:
        iteration["eval"]["test"]["metric"] = "$\\foo$ rate"
    texts = _svg_texts(write_report(tmp_path / "refine", state).read_text())
    assert "$\\foo$ rate" in texts, texts
