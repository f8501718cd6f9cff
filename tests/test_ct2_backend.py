"""The ctranslate2 backend against the transformers backend on the bundled model: greedy output must be
token-identical (float32), stops cut the same way, n samples come back, conversions are cached per model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codelutra_data.builders.sampling import prompt_for
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.models.base import SamplingParams
from codelutra_data.models.engine import load_backend
from codelutra_data.models.ct2 import prune_stale, shared_prefix
from codelutra_data.models.spec import resolve

pytestmark = pytest.mark.slow
TIE = 1e-3  # logits this close are a tie that float32 rounding may break either way, depending on the CPU


def same_greedy(reference, prompts, got, expected) -> None:
    """Greedy output equal to transformers', token for token, except where the two part at a tie: a token whose
    logit under transformers is within TIE of the other's (which one wins then depends on the CPU's rounding)."""
    import torch

    for prompt, (mine,), (theirs,) in zip(prompts, got, expected):
        if mine == theirs:
            continue
        tok, model = reference.tokenizer, reference.model
        head = reference._render(prompt)
        a = tok(head + mine.text, add_special_tokens=False)["input_ids"]
        b = tok(head + theirs.text, add_special_tokens=False)["input_ids"]
        at = next(i for i in range(min(len(a), len(b)) + 1) if i == min(len(a), len(b)) or a[i] != b[i])
        assert at < min(len(a), len(b)), (mine, theirs)  # one a prefix of the other: a stop decided differently
        with torch.no_grad():
            logits = model(torch.tensor([a[:at]])).logits[0, -1].float()
        gap = abs(float(logits[a[at]] - logits[b[at]]))
        assert gap < TIE and float(logits.max() - logits[a[at]]) < TIE, (gap, mine.text, theirs.text)


def test_greedy_output_is_identical_to_transformers_and_conversions_are_cached(tmp_path, monkeypatch):
    bundled = Path(resolve("smollm2-135m").path)  # prepared in the real cache; linked into the test's cache
    monkeypatch.setenv("CODELUTRA_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "models").mkdir(parents=True)
    os.symlink(bundled, tmp_path / "cache" / "models" / "smollm2-135m")
    prompts = [prompt_for(t) for t in load_tasks("spider-dev", "train", 3) + load_tasks("mbpp", "train", 3)]
    greedy = SamplingParams(0.0, 1.0, 40, stop=("```",))
    reference = load_backend("transformers", "smollm2-135m", batch_size=6)
    expected = reference.generate(prompts, 1, greedy, 0)
    ct2 = load_backend("ctranslate2", "smollm2-135m", batch_size=6)
    same_greedy(reference, prompts, ct2.generate(prompts, 1, greedy, 0), expected)
    # Three questions on one database: system prompt and schema run once, as the shared static prompt.
    assert shared_prefix([ct2._render(p) for p in prompts[:3]]) > 200
    same_greedy(reference, prompts[:3], ct2.generate(prompts[:3], 1, greedy, 0), expected[:3])
    same_greedy(reference, prompts[:1], ct2.generate(prompts[:1], 1, greedy, 0), expected[:1])
    sampled = ct2.generate(prompts[:2], 3, SamplingParams(0.8, 0.95, 16, stop=("```",)), 1)
    assert [len(x) for x in sampled] == [3, 3]
    conversions = list((tmp_path / "cache" / "ctranslate2").glob("*/model.bin"))
    assert len(conversions) == 1
    load_backend("ctranslate2", "smollm2-135m")  # the same model: the conversion is reused
    assert list((tmp_path / "cache" / "ctranslate2").glob("*/model.bin")) == conversions
    trained = tmp_path / "my-model"  # a model directory (as `train` writes) gets its own conversion
    trained.mkdir()
    for f in bundled.iterdir():
        os.symlink(f, trained / f.name)
    other = load_backend("ctranslate2", str(trained), batch_size=6)
    assert len(list((tmp_path / "cache" / "ctranslate2").glob("*/model.bin"))) == 2
    same_greedy(reference, prompts[:2], other.generate(prompts[:2], 1, greedy, 0), expected[:2])
    # A conversion of a directory that is gone, or whose files changed (retrained), is pruned; the bundled stays.
    cache = tmp_path / "cache" / "ctranslate2"
    names = {p.parent.name for p in cache.glob("*/model.bin")}
    (bundled_key,) = {p.parent.name for p in conversions}
    (trained_key,) = names - {bundled_key}
    for f in trained.iterdir():
        f.unlink()
    trained.rmdir()
    retrained = tmp_path / "retrained"
    retrained.mkdir()
    for f in bundled.iterdir():
        os.symlink(f, retrained / f.name)
    load_backend("ctranslate2", str(retrained))  # a new conversion prunes the stale ones
    names = {p.parent.name for p in cache.glob("*/model.bin")}
    assert bundled_key in names and trained_key not in names and len(names) == 2
    (retrained / "train_report.json").write_text("{}")  # the directory's files changed: its conversion is stale
    assert prune_stale(cache) == list(names - {bundled_key})
    assert {p.parent.name for p in cache.glob("*/model.bin")} == {bundled_key}
    assert not [p for p in cache.iterdir() if p.name.startswith(".") and ".stale-" in p.name]
