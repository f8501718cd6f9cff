"""`codelutra-data train` on bad input: one clear line, a non-zero exit, nothing written."""

from __future__ import annotations

import pytest
import yaml

from codelutra_data.cli import main
from codelutra_data.trainers.data import load_pairs
from focal_pairs import focal_pairs, write_pairs_release


def run(capsys, *args) -> tuple[int, str]:
    code = main(["train", *map(str, args)])
    err = capsys.readouterr().err.strip()
    return code, err


def release_without(tmp_path, column: str | None = None, spans: bool = True):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [p.to_dict() for p in focal_pairs("python")]
    for r in rows:
        if not spans:
            r["rejected_error_spans"] = []
        if column:
            del r[column]
    out = tmp_path / "rel" / "0.1.0"
    (out / "pairs").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), out / "pairs" / "train-x.parquet")
    return out


def test_unknown_method(tmp_path, capsys):
    code, err = run(capsys, "--method", "ppo", "--data", tmp_path, "--out", tmp_path / "m")
    assert code == 2 and err.count("\n") == 0
    assert "'ppo' is not one of 'codelutra', 'focal', 'dpo', 'sft'" in err


@pytest.mark.parametrize("method", ["codelutra", "dpo", "focal"])
def test_release_without_needed_columns(tmp_path, capsys, method):
    data = release_without(tmp_path, column="rejected")
    code, err = run(capsys, "--method", method, "--data", data, "--out", tmp_path / "m")
    assert code == 2 and err.count("\n") == 0
    assert "has no column(s) rejected" in err and f"method {method} needs" in err
    assert not (tmp_path / "m").exists()


def test_focal_on_pairs_without_spans(tmp_path, capsys):
    data = release_without(tmp_path, spans=False)
    code, err = run(capsys, "--method", "focal", "--data", data, "--out", tmp_path / "m")
    assert code == 2 and err.count("\n") == 0
    assert "no rejected_error_spans" in err and "--method codelutra" in err


def test_sft_needs_only_prompt_and_chosen(tmp_path):
    from codelutra_data.trainers.data import check_columns

    rows, _ = load_pairs(str(release_without(tmp_path, column="rejected")))
    check_columns(rows, ("prompt", "chosen"), "sft", "x")  # no error


def test_missing_data_bad_split_and_existing_output(tmp_path, capsys):
    code, err = run(capsys, "--data", tmp_path / "nope", "--out", tmp_path / "m")
    assert code == 2 and "data (--data): no file or folder at" in err and err.count("\n") == 0
    code, err = run(capsys, "--data", tmp_path, "--out", tmp_path / "m")
    assert code == 2 and "no pairs/ or focal_pairs/ folder" in err
    data = write_pairs_release(tmp_path / "releases", focal_pairs())
    code, err = run(capsys, "--data", data, "--split", "test", "--out", tmp_path / "m")
    assert code == 2 and "no 'test' split" in err and "train" in err
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    code, err = run(capsys, "--data", data, "--out", tmp_path / "m")
    assert code == 2 and "never overwritten" in err
    assert (tmp_path / "m" / "keep.txt").read_text() == "mine"
    code, err = run(capsys, "--data", data, "--out", tmp_path / "m2", "--max-steps", "0")
    assert code == 2 and "max-steps" in err
    code, err = run(capsys, "--data", data, "--out", tmp_path / "m2", "--merge")
    assert code == 2 and "--lora" in err
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"method": "focal", "betta": 0.2}))
    code, err = run(capsys, "--config", cfg, "--data", data, "--out", tmp_path / "m2")
    assert code == 2 and "unknown config option(s): betta" in err


def test_spans_outside_the_completion_are_refused(tmp_path, capsys):
    pairs = focal_pairs("sql")
    pairs[0].rejected_error_spans = [[5, 10_000]]
    data = write_pairs_release(tmp_path / "releases", pairs)
    code, err = run(capsys, "--method", "focal", "--data", data, "--out", tmp_path / "m", "--max-length", "512")
    assert code == 2 and err.splitlines()[-1].startswith("error: pair ")
    assert "outside the rejected completion" in err
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.partial-*"))


def test_load_pairs_reads_release_name_and_version(tmp_path):
    data = write_pairs_release(tmp_path / "releases", focal_pairs(), name="flow", version="0.2.0")
    rows, info = load_pairs(str(data))
    assert len(rows) == len(focal_pairs()) and info.name == "flow" and info.version == "0.2.0"
    assert info.build_id == "handmade"
    assert rows[0]["rejected_error_spans"] and rows[0]["prompt"][0]["role"] == "system"


def test_a_trajectories_release_is_read_from_its_focal_pairs(tmp_path, capsys):
    data = write_pairs_release(tmp_path / "releases", focal_pairs(), name="flow", version="0.1.0")
    (data / "pairs").rename(data / "focal_pairs")
    rows, info = load_pairs(str(data))
    assert len(rows) == len(focal_pairs()) and info.name == "flow"
    assert load_pairs(str(data), config="focal_pairs")[0] == rows
    code, err = run(capsys, "--data", data, "--data-config", "pairs", "--out", tmp_path / "m")
    assert code == 2 and "has no pairs/ config (it has: focal_pairs)" in err
    code, err = run(capsys, "--data", data, "--data-config", "nope", "--out", tmp_path / "m")
    assert code == 2 and "'nope' is not one of 'pairs', 'focal_pairs'" in err
    assert not (tmp_path / "m").exists()
