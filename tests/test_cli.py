"""The command line: fast start, clear one-line errors with a non-zero exit, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from codelutra_data.models import spec


def run(args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_help_and_tasks_list_do_not_import_torch(tmp_path):
    code = ("import sys; from codelutra_data.cli import main; rc = main(['tasks', 'list']); "
            "main(['--help']); main(['train', '--help']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "spider-dev" in proc.stdout and "build" in proc.stdout
    assert "--focal-alpha" in proc.stdout and "train" in proc.stdout


def test_tasks_show_reports_splits_and_empty_gold(tmp_path):
    proc = run(["tasks", "show", "spider-dev", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["tasks"] == 1034 and set(info["splits"]) == {"train", "validation", "test"}
    assert info["empty_gold_by_db"]["wta_1"] > 0 and info["empty_gold_by_db"]["flight_2"] > 0
    text = run(["tasks", "show", "spider-dev"], tmp_path).stdout
    assert "wta_1" in text and "empty-gold" in text


@pytest.mark.parametrize("args, message", [
    (["build", "--tasks", "nope"], "unknown task source 'nope'"),
    (["build", "--model", "not-a-model"], "unknown model 'not-a-model'"),
    (["build", "--tasks", "missing.jsonl"], "task file not found"),
    (["build", "--version", "1.0"], "not semver"),
    (["build", "--backend", "mystery"], "'mystery' is not one of 'auto'"),
    (["build", "--mode", "trajectories", "--reviser", "not-a-model"], "unknown model 'not-a-model'"),
    (["build", "--mode", "trajectories", "--max-rounds", "-1"], "'--max-rounds': -1 is not in the range 0<=x"),
    (["build", "--config", "missing.yaml"], "config file not found"),
    (["build", "--cpu-time", "10", "--wall-time", "5"], "wall-clock limit (5 s) must be at least"),
    (["build", "--timeout", "0"], "0.0 is not in the range 0<x<=86400"),
    (["build", "--threads", "0"], "'--threads': 0 is not in the range 1<=x"),
    (["build", "--backend", "openai"], "--backend openai needs --base-url"),
    (["tasks", "show", "nope"], "unknown task source"),
])
def test_bad_input_is_one_line_and_non_zero(tmp_path, args, message):
    proc = run(args, tmp_path)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "releases").exists()


def test_malformed_jsonl_names_the_line(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"question": "q", "db": "x.sqlite", "gold": "SELECT 1"}\n')
    proc = run(["build", "--tasks", "t.jsonl"], tmp_path)
    assert proc.returncode == 2 and "t.jsonl:1: database not found" in proc.stderr


def test_corrupt_database_is_reported(tmp_path):
    (tmp_path / "bad.sqlite").write_bytes(b"garbage" * 1000)
    (tmp_path / "t.jsonl").write_text('{"question": "q", "db": "bad.sqlite", "gold": "SELECT 1"}\n')
    proc = run(["build", "--tasks", "t.jsonl"], tmp_path)
    assert proc.returncode == 2 and "cannot read database" in proc.stderr


def test_no_disk_space_for_the_model_cache(tmp_path, monkeypatch):
    """The real free-space check: asking for more bytes than any disk has must refuse before writing."""
    monkeypatch.setitem(spec.BUNDLED["smollm2-135m"], "bytes_needed", 2**62)
    with pytest.raises(spec.UserError, match="not enough disk space for the model cache"):
        spec.prepare_bundled("smollm2-135m", tmp_path / "cache" / "smollm2-135m")
    assert not (tmp_path / "cache" / "smollm2-135m").exists()


def test_config_file_and_unknown_options(tmp_path):
    (tmp_path / "c.yaml").write_text("samples: 2\nbogus: 1\n")
    proc = run(["build", "--config", "c.yaml"], tmp_path)
    assert proc.returncode == 2 and "unknown config option(s): bogus" in proc.stderr
