"""The multi-turn (RLEF-style) rollout of `train --method grpo --turns N`, driven by the bundled model's real
generation: each conversation is the chat a reviser sees (task, answer, feedback-v1 + "fix it", answer, ...), token
for token; the mask is 1 exactly on the model's sampled tokens and 0 on the feedback turns; the final verdict is the
sandbox's for the last answer; and the reward takes that verdict instead of running the program again."""

from __future__ import annotations

import pytest

from codelutra_data.builders.executors import LocalExecutor
from codelutra_data.builders.feedback import feedback_message, revision_turn
from codelutra_data.builders.pipeline import References
from codelutra_data.builders.sampling import PREFILLS, prompt_for
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.errors import UserError
from codelutra_data.models.spec import resolve
from codelutra_data.sandboxes.settings import SandboxSettings
from codelutra_data.trainers.rewards import ExecutionReward
from codelutra_data.trainers.rollout import DebugRollout, program_of, render_next_turn


@pytest.fixture(scope="module")
def bundled():
    from codelutra_data.trainers.train import load_model

    return load_model(resolve("smollm2-135m").path)


def greedy(model, tokenizer, max_new_tokens: int):
    """The model's own continuation of each token list, cut after its first end-of-turn (as TRL's generation)."""
    import torch

    def generate(batch: list[list[int]]):
        out = []
        for ids in batch:
            with torch.no_grad():
                done = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                      max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=tokenizer.eos_token_id)
            new = done[0, len(ids):].tolist()
            if tokenizer.eos_token_id in new:
                new = new[:new.index(tokenizer.eos_token_id) + 1]
            out.append(new)
        return out, None
    return generate


def runs(mask: list[int], ids: list[int]) -> list[tuple[int, list[int]]]:
    """The completion cut where the mask changes: [(mask value, tokens), ...]."""
    out: list[tuple[int, list[int]]] = []
    for m, t in zip(mask, ids):
        if out and out[-1][0] == m:
            out[-1][1].append(t)
        else:
            out.append((m, [t]))
    return out


@pytest.mark.parametrize("source, limit, max_new_tokens", [("spider-dev", 2, 24), ("mbpp", 2, 80)])
def test_conversations_and_masks_are_the_revisers_chat(bundled, source, limit, max_new_tokens):
    model, tokenizer = bundled
    tasks = load_tasks(source, "train", limit)
    prompts = {tokenizer.apply_chat_template(prompt_for(t), tokenize=False, continue_final_message=True): t.task_id
               for t in tasks}
    with LocalExecutor(SandboxSettings(workers=2)) as executor:
        refs = References.check(executor, tasks)
        reward = ExecutionReward(tasks, executor, refs.timeouts(executor.settings.cpu_time_s))
        rollout = DebugRollout(reward, tokenizer, 3, prompts)
        batch = [p for p in prompts for _ in range(2)][1:]  # TRL hands each prompt over once per group member
        out = rollout.rollout(batch, greedy(model, tokenizer, max_new_tokens))
        assert len(out["completion_ids"]) == len(batch) and out["logprobs"] is None

        revised = 0
        for i, text in enumerate(batch):
            task = reward.tasks[prompts[text]]
            ids, mask = out["completion_ids"][i], out["env_mask"][i]
            assert out["prompt_ids"][i] == tokenizer(text=text)["input_ids"] and len(mask) == len(ids)
            pieces = runs(mask, ids)
            answers = [tokenizer.decode(t, skip_special_tokens=True) for m, t in pieces if m == 1]
            between = [tokenizer.decode(t) for m, t in pieces if m == 0]
            turns = out["turns_used"][i]
            assert len(answers) == turns and len(between) == turns - 1 and pieces[0][0] == 1 and pieces[-1][0] == 1
            assert all(len(t) <= max_new_tokens for m, t in pieces if m == 1)
            # the final verdict is the sandbox's for the last answer; earlier ones failed, else the chat would stop
            final = out["final_execution"][i]
            again = executor.run([(task, "again", program_of(task, PREFILLS[task.domain] + answers[-1]))],
                                 reward.timeouts)[0]
            assert final.status == again.status
            assert turns == 1 or out["first_status"][i] != "passed"
            assert turns == 3 or final.status == "passed"
            # token for token the chat a reviser sees: the feedback turns are the trajectories' revision turns
            attempts = []
            for answer, env in zip(answers, between):
                raw = PREFILLS[task.domain] + answer
                rerun = executor.run([(task, "x", program_of(task, raw))], reward.timeouts)[0]
                attempts.append((raw, feedback_message(task, program_of(task, raw), rerun)))
                assert revision_turn(attempts[-1][1], task.domain) in env
                assert env.rstrip().endswith(f"<|im_start|>assistant\n{PREFILLS[task.domain]}".rstrip())
                assert "<|im_start|>user\n" in env
            whole = tokenizer.decode(out["prompt_ids"][i] + ids)
            assert whole == render_next_turn(tokenizer, task, attempts) + tokenizer.decode(pieces[-1][1])
            revised += turns > 1
        assert revised >= 1  # the bundled model fails most first answers, so some conversations go on

    stats = rollout.stats.to_dict()
    assert stats["rollouts"] == len(batch) and sum(stats["turns"].values()) == len(batch)
    # the reward takes the rollout's verdicts as they are, without running anything
    executor_closed = ExecutionReward(tasks, None, {}, "pass")
    got = executor_closed(completions=[""] * len(batch), task_id=[prompts[p] for p in batch],
                          final_execution=out["final_execution"], turns_used=out["turns_used"],
                          first_status=out["first_status"])
    assert got == [1.0 if e.status == "passed" else 0.0 for e in out["final_execution"]]


def test_a_rollout_refuses_what_it_cannot_do(bundled):
    _, tokenizer = bundled
    with pytest.raises(UserError, match="at least 2 turns"):
        DebugRollout(None, tokenizer, 1, {})
    with pytest.raises(UserError, match="not among the task source's prompts"):
        DebugRollout(None, tokenizer, 2, {}).rollout(["a prompt from elsewhere"], lambda batch: ([], None))
