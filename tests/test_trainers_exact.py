"""Every loss checked numerically against an independent computation: tiny random model, real tokenizer.

The hand computations run their own forward passes on unpadded sequences and find error tokens by decoding
growing prefixes (not by offsets), so they share no code with the trainer path they check.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from codelutra_data.trainers.config import TrainConfig
from codelutra_data.trainers.data import select_pairs
from codelutra_data.trainers.masks import SpanMaskCollator, mask_alignment_errors, span_token_mask
from codelutra_data.trainers.preference import dpo_trainer
from focal_pairs import focal_pairs

BETA = 0.1


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from codelutra_data.models.spec import resolve

    return AutoTokenizer.from_pretrained(resolve("smollm2-135m").path)


def tiny_model(tokenizer, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger weights than the default init, so log-ratios are far from zero
        for p in model.parameters():
            p.mul_(8.0)
    return model.eval()


@pytest.fixture(scope="module")
def models(tokenizer):
    return tiny_model(tokenizer, 0), tiny_model(tokenizer, 1)


def rows(spans: str = "lcs", pick: tuple[int, ...] | None = None) -> list[dict]:
    """The hand-made focal pairs, or those at `pick` (a forward over a 49k-token vocabulary costs seconds)."""
    out = []
    pairs = focal_pairs()
    for p in [pairs[i] for i in pick] if pick else pairs:
        row = p.to_dict()
        if spans == "full":
            row["rejected_error_spans"] = [[0, len(row["rejected"][0]["content"])]]
        elif spans == "none":
            row["rejected_error_spans"] = []
        out.append(row)
    return out


def make_trainer(tmp_path, models, tokenizer, data, loss_type, weights, focal, max_length=2048):
    policy, ref = (copy.deepcopy(m) for m in models)
    cfg = TrainConfig(method="focal" if focal else "dpo", data="x", out="y", beta=BETA, max_length=max_length,
                      batch_size=len(data))
    return dpo_trainer(cfg, policy, tokenizer, data, str(tmp_path / "t"), loss_type, weights,
                       collator_cls=SpanMaskCollator if focal else None, ref_model=ref)


def batch_loss(trainer) -> tuple[float, dict]:
    examples = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    batch = trainer.data_collator(examples)
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
    return float(loss), batch


def token_logps(model, ids: list[int], n_prompt: int) -> torch.Tensor:
    """log p(token | prefix) for each completion token of one unpadded sequence."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    logps = F.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1)
    return logps[n_prompt - 1:]


def decoded_mask(tokenizer, ids: list[int], content: str, spans: list[list[int]]) -> list[int]:
    """The error-token mask found by decoding prefixes: independent of the offset mapping used in training."""
    kw = {"skip_special_tokens": False, "clean_up_tokenization_spaces": False}
    text = tokenizer.decode(ids, **kw)
    at = text.find(content)
    assert at >= 0
    ends = [len(tokenizer.decode(ids[: j + 1], **kw)) - at for j in range(len(ids))]
    to_end = any(e == len(content) for _, e in spans)
    mask = []
    for j, hi in enumerate(ends):
        lo = ends[j - 1] if j else -at
        mask.append(int(any(lo < e and hi > s for s, e in spans) or (to_end and lo >= len(content))))
    return mask


def hand_focal(tokenizer, models, trainer, alpha: float, shift: int = 0) -> float:
    policy, ref = models
    margins, nll_sum, nll_n = [], 0.0, 0
    for ex in trainer.train_dataset:
        n = len(ex["prompt_ids"])
        chosen = ex["prompt_ids"] + ex["chosen_ids"]
        rejected = ex["prompt_ids"] + ex["rejected_ids"]
        spans = ex["rejected_error_spans"]
        if spans:
            mask = torch.tensor(decoded_mask(tokenizer, ex["rejected_ids"], ex["rejected"][0]["content"], spans),
                                dtype=torch.float32)
            mask = torch.roll(mask, shift) if shift else mask
        else:
            mask = torch.ones(len(ex["rejected_ids"]))
        pc, rc = token_logps(policy, chosen, n), token_logps(ref, chosen, n)
        pr, rr = token_logps(policy, rejected, n), token_logps(ref, rejected, n)
        margins.append((pc.sum() - rc.sum()) - ((pr * mask).sum() - (rr * mask).sum()))
        nll_sum += float(-pc.sum())
        nll_n += len(pc)
    dpo = float(torch.stack([-F.logsigmoid(BETA * m) for m in margins]).mean())
    return dpo + alpha * nll_sum / nll_n


def test_focal_with_full_spans_equals_trl_sigmoid(tmp_path, models, tokenizer):
    full = make_trainer(tmp_path / "a", models, tokenizer, rows("full", pick=(1, 6)), ["sigmoid"], [1.0], focal=True)
    plain = make_trainer(tmp_path / "b", models, tokenizer, rows("lcs", pick=(1, 6)), ["sigmoid"], [1.0], focal=False)
    focal_loss, focal_batch = batch_loss(full)
    plain_loss, plain_batch = batch_loss(plain)
    assert torch.equal(focal_batch["completion_mask"], plain_batch["completion_mask"])
    assert abs(focal_loss - plain_loss) < 1e-5
    assert plain_loss > 0.05  # a non-trivial loss: the two random models disagree


def test_focal_partial_mask_equals_hand_computation(tmp_path, models, tokenizer):
    data = rows("lcs", pick=(0, 1, 3, 6))  # one-line and two-line regions, Python and SQL
    data[1]["rejected_error_spans"] = []  # one plain pair in the batch: falls back to the full mask
    for alpha in (0.0, 1.0):
        trainer = make_trainer(tmp_path / f"a{alpha}", models, tokenizer, data,
                               ["sigmoid", "sft"] if alpha else ["sigmoid"], [1.0, alpha] if alpha else [1.0],
                               focal=True)
        loss, batch = batch_loss(trainer)
        expected = hand_focal(tokenizer, models, trainer, alpha)
        # float32 sums in a different order: 1e-5, relative once the NLL term makes the loss large
        assert abs(loss - expected) < 1e-5 * max(1.0, abs(expected)), (alpha, loss, expected)
        n = len(data)
        rejected_rows = batch["completion_mask"][n:]
        chosen_rows = batch["completion_mask"][:n]
        assert int(rejected_rows.sum()) < int(chosen_rows.sum())  # the rejected side really was narrowed
        # masking matters: the same batch without spans gives a different loss
        plain = make_trainer(tmp_path / f"p{alpha}", models, tokenizer, rows("none", pick=(0, 1, 3, 6)),
                             ["sigmoid", "sft"] if alpha else ["sigmoid"], [1.0, alpha] if alpha else [1.0],
                             focal=True)
        assert abs(batch_loss(plain)[0] - loss) > 1e-3


def test_sft_term_is_token_mean_nll_of_chosen(tmp_path, models, tokenizer):
    lam = 0.7
    data = rows("lcs", pick=(1, 6))
    with_sft = make_trainer(tmp_path / "a", models, tokenizer, data, ["sigmoid", "sft"], [1.0, lam], focal=False)
    dpo_only = make_trainer(tmp_path / "b", models, tokenizer, data, ["sigmoid"], [1.0], focal=False)
    policy, _ = models
    nll_sum, nll_n = 0.0, 0
    for ex in with_sft.train_dataset:
        pc = token_logps(policy, ex["prompt_ids"] + ex["chosen_ids"], len(ex["prompt_ids"]))
        nll_sum += float(-pc.sum())
        nll_n += len(pc)
    sft_term = batch_loss(with_sft)[0] - batch_loss(dpo_only)[0]
    assert abs(sft_term - lam * nll_sum / nll_n) < 1e-4


def test_mask_shifted_by_one_token_fails_alignment(tmp_path, models, tokenizer):
    trainer = make_trainer(tmp_path, models, tokenizer, rows("lcs"), ["sigmoid"], [1.0], focal=True)
    loss, _ = batch_loss(trainer)
    for ex in trainer.train_dataset:
        content, spans = ex["rejected"][0]["content"], ex["rejected_error_spans"]
        mask = span_token_mask(tokenizer, ex["prompt"], ex["rejected"], spans, ex["prompt_ids"], ex["rejected_ids"])
        assert mask == decoded_mask(tokenizer, ex["rejected_ids"], content, spans)
        assert mask_alignment_errors(tokenizer, ex["rejected_ids"], mask, content, spans) == []
        masked_text = tokenizer.decode([t for t, m in zip(ex["rejected_ids"], mask) if m])
        assert all(content[s:e].strip() in masked_text for s, e in spans)
        for shift in (1, -1):
            shifted = mask[-shift:] + mask[:-shift]
            assert mask_alignment_errors(tokenizer, ex["rejected_ids"], shifted, content, spans), shift
    assert abs(hand_focal(tokenizer, models, trainer, 0.0, shift=1) - loss) > 1e-4


def test_truncated_spans_and_long_prompts_are_dropped_and_counted(tokenizer):
    data = rows("lcs")
    sel = select_pairs(data, tokenizer, max_length=100_000, focal=True)
    assert len(sel.rows) == len(data) and not sel.dropped
    # the shortest prompt + a few tokens: every prompt fits, but no error line does
    from codelutra_data.trainers.masks import tokenize_pair

    lengths = [len(tokenize_pair(tokenizer, r["prompt"], r["chosen"], r["rejected"]).prompt_ids) for r in data]
    sel = select_pairs(data, tokenizer, max_length=min(lengths) + 3, focal=True)
    assert sel.dropped["spans_truncated"] + sel.dropped["prompt_too_long"] == len(data)
    assert sel.dropped["spans_truncated"] >= 1 and sel.dropped["prompt_too_long"] >= 1
    plain = select_pairs(data, tokenizer, max_length=min(lengths) + 3, focal=False)
    assert len(plain.rows) == sel.dropped["spans_truncated"] and plain.notes["pairs_truncated"] == len(plain.rows)
    # the longest kept sequence sizes a GPU's training step: the prompt and its longer side, truncation applied
    toks = [tokenize_pair(tokenizer, r["prompt"], r["chosen"], r["rejected"]) for r in data]
    assert sel.longest == 0 and plain.longest == min(lengths) + 3
    whole = max(len(t.prompt_ids) + max(len(t.chosen_ids), len(t.rejected_ids)) for t in toks)
    assert select_pairs(data, tokenizer, max_length=100_000, focal=False).longest == whole


def test_collator_truncates_mask_like_the_sequence(tmp_path, models, tokenizer):
    data = rows("lcs")
    ex_full = make_trainer(tmp_path / "a", models, tokenizer, data, ["sigmoid"], [1.0], focal=True)
    # max_length that cuts the completion after its first error token: rows must stay aligned
    ex = ex_full.train_dataset[0]
    mask = span_token_mask(tokenizer, ex["prompt"], ex["rejected"], ex["rejected_error_spans"], ex["prompt_ids"],
                           ex["rejected_ids"])
    cut = len(ex["prompt_ids"]) + mask.index(1) + 1
    collator = SpanMaskCollator(pad_token_id=tokenizer.pad_token_id, max_length=cut, tokenizer=tokenizer)
    batch = collator([ex])
    expected = ([0] * len(ex["prompt_ids"]) + mask)[:cut]
    assert batch["completion_mask"][1].tolist() == expected
    assert batch["input_ids"].shape[1] == cut
