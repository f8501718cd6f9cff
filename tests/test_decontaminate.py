"""Contamination checks: the 13-gram rule, `build --decontaminate`, the report in every card, and the overlap a
trained model's evaluation warns about."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from answer_server import answer_server
from codelutra_data.builders.decontaminate import ngrams, overlap, words
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.cli import main

HE0 = load_tasks("humaneval", "all", 1)[0]  # has_close_elements


def python_task(task_id: str, prompt: str, name: str = "add") -> dict:
    return {"task_id": task_id, "prompt": prompt, "entry_point": name,
            "tests": [f"assert {name}(1, 2) == 3", f"assert {name}(2, 2) == 4"],
            "reference": f"def {name}(a, b):\n    return a + b\n"}


def docstring_words(n: int) -> str:
    """The first n words of HumanEval/0's docstring, as a user's task might copy them."""
    doc = HE0.metadata["code_prompt"].split('"""')[1]
    return " ".join(doc.split()[:n])


def test_normalisation_and_the_13_word_window():
    assert words("Check if in given list, of NUMBERS: are any two?") == \
        ["check", "if", "in", "given", "list", "of", "numbers", "are", "any", "two"]
    assert len(ngrams("a b c d e f g h i j k l m")) == 1 and ngrams("a b c d e f g h i j k l") == set()
    from codelutra_data.records import Task

    def task(text: str) -> Task:
        return Task("t", "s", "python", [{"role": "user", "content": text}], {}, "", "test", {"problem": text})

    thirteen, twelve = task("My task. " + docstring_words(13)), task("My task. " + docstring_words(12))
    found = overlap([thirteen, twelve], "humaneval", [HE0])
    assert list(found.overlapping) == ["t"] and found.overlapping["t"] == ["HumanEval/0"]
    assert overlap([twelve], "humaneval", [HE0]).overlapping == {}


@pytest.fixture
def tasks_file(tmp_path) -> Path:
    rows = [python_task("copied", "Write add(a, b). " + docstring_words(20)),
            python_task("mine-1", "Write add(a, b) returning the sum of two integers."),
            python_task("mine-2", "Add two numbers and return the result, please.")]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def build(capsys, tmp_path: Path, url: str, tasks: Path, *extra: str) -> Path:
    capsys.readouterr()
    args = ["build", "--tasks", str(tasks), "--split", "all", "--backend", "openai", "--base-url", url, "--model",
            "served-model", "--samples", "2", "--reference-fallback", "--runs-dir", str(tmp_path / "runs"),
            "--releases-dir", str(tmp_path / "releases"), "--json", *extra]
    assert main(args) == 0
    return Path(json.loads(capsys.readouterr().out)["release"])


def test_decontaminate_drops_overlapping_tasks_and_every_card_reports_overlap(capsys, tmp_path, tasks_file):
    with answer_server() as url:
        kept = build(capsys, tmp_path, url, tasks_file, "--version", "0.1.0")
        dropped = build(capsys, tmp_path, url, tasks_file, "--version", "0.2.0", "--decontaminate", "humaneval")
    report = {c["suite"]: c for c in yaml.safe_load((kept / "build_config.yaml").read_text())["stats"]["contamination"]}
    assert report["humaneval"]["tasks"] == ["copied"] and report["humaneval"]["dropped"] is False
    assert report["mbpp"]["overlapping"] == 0 and report["spider-dev"]["overlapping"] == 0
    info = yaml.safe_load((dropped / "build_config.yaml").read_text())
    assert info["stats"]["tasks"] == 2 and info["config"]["decontaminate"] == "humaneval"
    report = {c["suite"]: c for c in info["stats"]["contamination"]}
    assert report["humaneval"] == {"suite": "humaneval", "suite_tasks": 164, "overlapping": 1, "tasks": ["copied"],
                                   "dropped": True}
    card = (dropped / "README.md").read_text()
    assert "| humaneval | 164 | 1 (copied) | yes |" in card and "| mbpp | 257 | 0 | no |" in card
    assert "| humaneval | 164 | 1 (copied) | no |" in (kept / "README.md").read_text()
    # the evaluation of a model trained on the first release warns about the overlap, not about the second's
    from codelutra_data.benchmarks.contamination import training_overlap

    for release, expected in ((kept, 1), (dropped, 0)):
        model = tmp_path / f"model-{release.name}"
        model.mkdir()
        (model / "train_report.json").write_text(json.dumps({"data": {"location": str(release)}}))
        seen = training_overlap(str(model), "humaneval", load_tasks("humaneval", "all"))
        assert seen["checked"] and seen["suite_tasks_overlapping"] == expected
        assert seen["tasks"] == (["HumanEval/0"] if expected else [])


def test_a_suite_that_cannot_be_read_is_one_line(capsys, tmp_path, tasks_file):
    assert main(["build", "--tasks", str(tasks_file), "--decontaminate", "humaneval,no-such-suite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown task source 'no-such-suite'" in err[0]
    assert main(["build", "--tasks", str(tasks_file), "--split", "all", "--decontaminate", "humaneval,humaneval"]) == 2
    assert "names a suite twice" in capsys.readouterr().err
