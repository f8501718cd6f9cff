"""Turn tasks into Samples with a model backend; every sample is keyed by what determines it. The sampling
settings (one group, shared by build, eval and refine's builds) live here too."""

from __future__ import annotations

from codelutra_data.builders.extract import EXTRACTORS
from codelutra_data.builders.prompts import template_hash
from codelutra_data.config import Settings, setting, settings
from codelutra_data.models.base import Backend, Completion, GenerationWork, SamplingParams
from codelutra_data.records import Sample, Task, content_hash

SQL_PREFILL = "```sql\n"
PREFILLS = {"sql": SQL_PREFILL, "python": "```python\n"}
DEFAULT_MAX_NEW_TOKENS = {"sql": 128, "python": 384}
STOP = ("```",)  # the answer's code fence closes: nothing after it is code


@settings(frozen=True)
class SamplingSettings(Settings):
    """How answers are sampled (`eval` defaults to greedy, `build` to temperature 0.8)."""

    temperature: float = setting(0.8, "Sampling temperature; 0 is greedy.", at_least=0)
    top_p: float = setting(0.95, "Nucleus sampling: keep the most likely tokens up to this total probability.",
                           above=0, at_most=1)
    max_new_tokens: int | None = setting(None, "Tokens generated per answer at most.",
                                         shown="128 for SQL, 384 for Python", at_least=1, at_most=2**20)

    def params(self, domain: str) -> SamplingParams:
        tokens = self.max_new_tokens or DEFAULT_MAX_NEW_TOKENS[domain]
        return SamplingParams(self.temperature, self.top_p, tokens, stop=STOP)


def prompt_for(task: Task) -> list[dict]:
    """The chat sent to the model: the task's prompt, with the assistant turn opened by a code fence so a
    small model answers in code (the fence is part of the recorded raw output)."""
    return task.prompt + [{"role": "assistant", "content": PREFILLS[task.domain]}]


def sample_key(task: Task, backend_name: str, model_id: str, revision: str, sampling: SamplingParams,
               seed: int, index: int, iteration: int) -> str:
    template = task.metadata.get("template", "")
    return content_hash(task.task_id, content_hash(prompt_for(task)), task.reference, backend_name, model_id,
                        revision, sampling.to_dict(), seed, index, template, iteration, EXTRACTORS[task.domain][0])


def chunk_seed(seed: int, tasks: list[Task]) -> int:
    return int(content_hash(seed, [t.task_id for t in tasks]), 16) % (2**31)


def generation_work(tasks: list[Task], n: int, sampling: SamplingParams, seed: int) -> GenerationWork:
    """One chunk's batched generate call; the seed depends only on the chunk, so reruns (and any replica
    that runs it) agree."""
    return GenerationWork([prompt_for(t) for t in tasks], n, sampling, chunk_seed(seed, tasks))


def sample_tasks(backend: Backend, tasks: list[Task], n: int, sampling: SamplingParams, seed: int,
                 iteration: int = 0) -> list[Sample]:
    """n samples per task in one batched call, run here."""
    work = generation_work(tasks, n, sampling, seed)
    outputs = backend.generate(work.prompts, work.n, work.sampling, work.seed)
    return samples_from(backend, tasks, outputs, sampling, seed, iteration)


def samples_from(backend: Backend, tasks: list[Task], outputs: list[list[Completion]], sampling: SamplingParams,
                 seed: int, iteration: int = 0) -> list[Sample]:
    """The Sample records of one chunk's completions, wherever they were generated."""
    samples = []
    for task, completions in zip(tasks, outputs):
        prefix = PREFILLS[task.domain]
        extractor, extract = EXTRACTORS[task.domain]
        template = task.metadata.get("template", "")
        for index, completion in enumerate(completions):
            raw = prefix + completion.text
            samples.append(Sample(
                sample_id=sample_key(task, backend.name, backend.ref.model_id, backend.ref.revision, sampling,
                                     seed, index, iteration),
                task_id=task.task_id, model=backend.ref.model_id, model_revision=backend.ref.revision,
                backend=backend.name, sampling=sampling.to_dict(), seed=seed, sample_index=index,
                prompt_hash=content_hash(prompt_for(task)), template=f"{template}@{template_hash(template)}",
                raw_output=raw, code=extract(raw) or "", extractor=extractor, iteration=iteration,
                prefill=completion.prefill, backend_version=backend.version, tokens=completion.tokens,
                finish_reason=completion.finish_reason,
            ))
    return samples
