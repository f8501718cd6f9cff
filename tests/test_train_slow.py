"""Real training of the bundled model: 2 steps per method on real pairs, outputs that load, cards that say what ran."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml

from answer_server import answer_server
from codelutra_data.cli import main
from focal_pairs import focal_pairs, write_pairs_release

pytestmark = pytest.mark.slow
SMOKE = ["--max-steps", "2", "--max-length", "384", "--batch-size", "1"]


def train(capsys, *args) -> dict:
    code = main(["train", *map(str, args), *SMOKE, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    return json.loads(captured.out)


def card_of(out) -> tuple[dict, str]:
    text = (out / "README.md").read_text()
    return yaml.safe_load(text.split("---")[1]), text


def check_full_model(out, method: str, data_name: str, data_version: str,
                     base: str = "HuggingFaceTB/SmolLM2-135M-Instruct", beta: float = 0.1):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok.apply_chat_template([{"role": "user", "content": "Write SQL to count rows of t."}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    generated = model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert generated.shape[1] == ids.shape[1] + 4
    meta, text = card_of(out)
    assert meta["base_model"] == base and meta["datasets"] == [data_name]
    assert method in meta["tags"]
    assert f"method **{method}**" in text and f"version `{data_version}`" in text
    assert f"| `beta` | `{beta}` |" in text and "| `max_steps` | `2` |" in text
    assert "training took" in text and "| steps | 2 |" in text
    report = json.loads((out / "train_report.json").read_text())
    assert report["metrics"]["steps"] == 2 and report["config"]["method"] == method


def test_codelutra_dpo_sft_on_a_real_release(tmp_path, capsys):
    """A real MBPP build whose answers come from a scripted server (pairs on any machine), trained for real."""
    from codelutra_data.builders.build import BuildConfig, run_build
    from codelutra_data.builders.tasks import load_tasks

    references = {t.prompt[-1]["content"]: t.reference for t in load_tasks("mbpp", "train", 3)}
    with answer_server(references) as url:
        cfg = BuildConfig(tasks="mbpp", split="train", limit=3, samples=4, backend="openai", base_url=url,
                          model="served-model", reference_fallback=True, name="real", version="0.1.0",
                          runs_dir=str(tmp_path / "runs"), releases_dir=str(tmp_path / "releases"))
        result = run_build(cfg)
    assert result.stats["pairs"] >= 3  # pinned by the server: the same on every machine
    release = result.release_dir
    # dpo starts from codelutra's output: a model directory as --model (the next iteration of the loop)
    for method, model in (("codelutra", "smollm2-135m"), ("dpo", tmp_path / "m-codelutra"), ("sft", "smollm2-135m")):
        out = tmp_path / f"m-{method}"
        report = train(capsys, "--method", method, "--data", release, "--out", out, "--model", model)
        assert report["pairs_used"] >= 1 and report["output"] == "full"
        assert report["metrics"]["steps"] == 2 and report["metrics"]["train_loss"] > 0
        check_full_model(out, method, "real", "0.1.0", base="m-codelutra" if method == "dpo" else
                         "HuggingFaceTB/SmolLM2-135M-Instruct")
        if method != "sft":
            assert "rewards/margins" in report["metrics"]
    # The trained models on the leaderboard: each row names its dataset, version and method from the card,
    # and the dpo model (trained from m-codelutra) is shown against it.
    store = tmp_path / "results.duckdb"
    for method in ("codelutra", "dpo"):
        code = main(["eval", "--suite", "mbpp", "--limit", "1", "--model", str(tmp_path / f"m-{method}"),
                     "--max-new-tokens", "16", "--store", str(store), "--json"])
        assert code == 0, capsys.readouterr().err[-2000:]
        capsys.readouterr()
    from codelutra_data.benchmarks.leaderboard import boards
    from codelutra_data.benchmarks.store import read_rows

    rows = {r["model"]: r for r in read_rows(store)}
    assert {(m, r["dataset"], r["dataset_version"], r["method"]) for m, r in rows.items()} == {
        ("m-codelutra", "real", "0.1.0", "codelutra"), ("m-dpo", "real", "0.1.0", "dpo")}
    assert rows["m-dpo"]["base_model"] == "m-codelutra" and rows["m-dpo"]["model_revision"].startswith("local-")
    (board,) = boards(list(rows.values()))
    dpo = next(r for r in board.rows if r["model"] == "m-dpo")
    assert dpo["delta"] == dpo["value"] - rows["m-codelutra"]["value"]
    for method in ("codelutra", "dpo", "sft"):
        shutil.rmtree(tmp_path / f"m-{method}")  # 540 MB each


def test_focal_on_handmade_flow_pairs(tmp_path, capsys):
    release = write_pairs_release(tmp_path / "releases", focal_pairs(), name="flow", version="0.1.0")
    out = tmp_path / "m-focal"
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"method": "focal", "beta": 0.2, "focal_alpha": 0.5, "max_steps": 50}))
    report = train(capsys, "--config", config, "--data", release, "--out", out)  # flags beat the file
    # the Spider prompts (schemas) do not fit 384 tokens: dropped and counted, never silently
    assert report["pairs_used"] == 5 and report["dropped"] == {"prompt_too_long": 2}
    assert 0 < report["focal_span_tokens"] < report["focal_rejected_tokens"]
    check_full_model(out, "focal", "flow", "0.1.0", beta=0.2)
    text = card_of(out)[1]
    assert "Target-RPO" in text and "| `focal_alpha` | `0.5` |" in text


def test_lora_adapter_loads_on_base_and_merge_writes_a_full_model(tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from codelutra_data.models.spec import resolve

    release = write_pairs_release(tmp_path / "releases", focal_pairs(), name="flow", version="0.1.0")
    out = tmp_path / "m-lora"
    report = train(capsys, "--method", "codelutra", "--data", release, "--out", out, "--lora", "--lora-r", "8")
    assert report["output"] == "lora-adapter"
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    base_path = resolve("smollm2-135m").path
    base = AutoModelForCausalLM.from_pretrained(base_path)
    reference = {k: v.clone() for k, v in base.state_dict().items()}
    model = PeftModel.from_pretrained(base, out)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)  # trained (B starts at zero)
    merged = model.merge_and_unload()
    changed = sum(not torch.equal(v, reference[k]) for k, v in merged.state_dict().items() if k in reference)
    assert changed > 0
    meta, text = card_of(out)
    assert meta["library_name"] == "peft" and "lora" in meta["tags"] and "PeftModel.from_pretrained" in text

    merged_out = tmp_path / "m-merged"
    report = train(capsys, "--method", "codelutra", "--data", release, "--out", merged_out, "--lora", "--merge")
    assert report["output"] == "merged-lora"
    full = AutoModelForCausalLM.from_pretrained(merged_out)
    assert not any("lora" in k for k in full.state_dict())
