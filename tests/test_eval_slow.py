"""A real greedy eval of the bundled model on a few tasks of each suite, its rows on the leaderboard page,
and the page in headless Chromium (sorting a column, a screenshot)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def run(args, cwd):
    return subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ}, timeout=1200)


@pytest.mark.slow
def test_greedy_eval_of_the_bundled_model_lands_in_the_store_and_on_the_page(tmp_path):
    for suite, tokens in (("spider-dev", "64"), ("humaneval", "96"), ("mbpp", "96")):
        proc = run(["eval", "--suite", suite, "--model", "smollm2-135m", "--limit", "3", "--max-new-tokens", tokens,
                    "--batch-size", "3", "--json", "--write-predictions", str(tmp_path / f"{suite}.jsonl")], tmp_path)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        metric = result["headline"]
        assert metric == ("execution_accuracy" if suite == "spider-dev" else "pass@1")
        value = result["metrics"][metric]["value"]
        assert 0.0 <= value <= 1.0 and result["n"] == 1 and result["sampling"]["temperature"] == 0.0
        assert result["model"]["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert sum(result["status_histogram"].values()) == 3
        per_task = [json.loads(x) for x in Path(result["per_task_file"]).read_text().splitlines()]
        assert value == sum(r["correct"] for r in per_task) / 3 and all(r["raw_outputs"] for r in per_task)
        written = [json.loads(x) for x in (tmp_path / f"{suite}.jsonl").read_text().splitlines()]
        assert [w["solution"] for w in written] == [r["samples"][0] for r in per_task]
        # What was written grades to the same score without the model.
        again = run(["eval", "--suite", suite, "--limit", "3", "--samples", str(tmp_path / f"{suite}.jsonl"), "--json"],
                    tmp_path)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["metrics"][metric]["value"] == value
    board = run(["leaderboard", "--markdown"], tmp_path)
    assert board.returncode == 0, board.stderr
    for suite in ("spider-dev (test, 3 tasks)", "humaneval (test, 3 tasks)", "mbpp (test, 3 tasks)"):
        assert suite in board.stdout
    assert board.stdout.count("HuggingFaceTB/SmolLM2-135M-Instruct") == 3
    assert board.stdout.count("samples.jsonl") == 0 and board.stdout.count(".jsonl") == 3  # the graded files
    page = run(["leaderboard", "--html", str(tmp_path / "site")], tmp_path)
    assert page.returncode == 0 and "SmolLM2-135M-Instruct" in (tmp_path / "site" / "index.html").read_text()


@pytest.mark.skipif(sys.platform != "linux", reason="Debian's chromium is installed by make on Linux")
def test_leaderboard_page_sorts_in_headless_chromium(tmp_path):
    import datetime

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from codelutra_data.benchmarks.leaderboard import render_html

    assert CHROMIUM and CHROMEDRIVER, "chromium and chromedriver are missing: `make test` installs them"
    base = {"suite": "mbpp", "split": "test", "suite_hash": "h", "metric": "pass@1", "tasks": 257, "n": 1, "k": 1,
            "temperature": 0.0, "date": datetime.datetime(2026, 11, 23), "model_revision": "r", "dataset": "",
            "dataset_version": "", "method": "", "base_model": ""}
    values = {"base": 0.0623, "it1": 0.0973, "sql-it2": 0.0934, "tiny": 0.01}
    rows = [{**base, "model": m, "value": v, "ci_low": v - 0.02, "ci_high": v + 0.02} for m, v in values.items()]
    rows[1].update(base_model="base", dataset="mbpp-pairs", method="codelutra")
    page = render_html(rows, tmp_path / "site")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=390,844"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(page.as_uri())

        def models() -> list[str]:
            return [row.find_elements(By.TAG_NAME, "td")[1].text
                    for row in driver.find_elements(By.CSS_SELECTOR, "table.sortable tbody tr")]

        assert models() == ["it1", "sql-it2", "base", "tiny"]  # best first
        score = driver.find_elements(By.CSS_SELECTOR, "table.sortable thead th button")[2]
        score.click()
        assert models() == ["tiny", "base", "sql-it2", "it1"]
        assert driver.find_elements(By.CSS_SELECTOR, "thead th")[2].get_attribute("aria-sort") == "ascending"
        score.click()
        assert models() == ["it1", "sql-it2", "base", "tiny"]
        driver.find_elements(By.CSS_SELECTOR, "table.sortable thead th button")[1].click()  # by model name
        assert models() == ["tiny", "sql-it2", "it1", "base"]
        assert len(driver.find_elements(By.CSS_SELECTOR, "figure.chart svg g[id^='bar-']")) == 4
        # Readable on a phone: the page itself does not scroll sideways (only the table's own box may).
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot = tmp_path / "leaderboard.png"
        assert driver.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        driver.quit()
