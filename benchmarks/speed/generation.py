"""Generation speed of the backends on the same prompts and token budget, side by side in one run.

    python -m codelutra_data.benchmarks.speed.generation                  # the build's shape: 4 tasks x 8 samples
    python -m codelutra_data.benchmarks.speed.generation --prompts 32 --samples 1 --rounds 2
    python -m codelutra_data.benchmarks.speed.generation --batch-sizes 16,32,64 --backends transformers,ctranslate2
    python -m codelutra_data.benchmarks.speed.generation --backends transformers --ct2 float32,int16,int8,float32/2 \
        --agreement 64

The default shape is what `build` asks for (8 samples per task, 4 tasks per call with batch size 32, Spider
chat prompts, 128 new tokens at most, T=0.8, top_p 0.95). Backends measured: `transformers` (today's
reference), `ctranslate2` (float32) and `llamacpp` (llama.cpp's server on the bundled Q4_1 GGUF), each where
installed. Output tokens are counted with the model's own tokenizer for every backend; the backends take
turns within each round, so a busy machine slows them alike. Printed: tokens/s per backend and the ratio to
transformers. `--batch-sizes` measures each backend at several sequences per call (what `--batch-size` sets; the
prompts per call are that over `--samples`), every size taking its turn in every round: what `--batch-size auto`
picks for the CPU engines comes from this. `--ct2` adds CTranslate2 variants: a compute type (float32, int16, int8:
weights quantized on load) and, after a slash, parallel batches (`inter_threads`, the cores split between them).
`--agreement N` then decodes N of the build's prompts greedily with transformers and every other engine and prints
how often each gives exactly transformers' output, and the share of tokens it agrees on before it first differs:
the exactness an engine would have to state in a card.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

from codelutra_data.builders.sampling import prompt_for
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.machine import default_threads
from codelutra_data.models.base import SamplingParams
from codelutra_data.models.engine import load_backend
from codelutra_data.models.spec import resolve

ENGINES = {"transformers": None, "ctranslate2": "ctranslate2", "llamacpp": "xllamacpp"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4, help="tasks per generate call")
    parser.add_argument("--samples", type=int, default=8, help="samples per task")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--rounds", type=int, default=3, help="measurements per backend, taking turns")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--backends", default=",".join(ENGINES), help="comma-separated subset")
    parser.add_argument("--ct2", default="", help="comma-separated CTranslate2 variants: TYPE or TYPE/PARALLEL "
                        "(float32, int16, int8; e.g. float32/2)")
    parser.add_argument("--agreement", type=int, default=0, help="greedy exactness against transformers on N prompts")
    parser.add_argument("--batch-sizes", default="", help="comma-separated sequences per call (default: prompts x "
                        "samples)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.batch_sizes.split(",") if x] or [args.prompts * args.samples]
    from transformers import AutoTokenizer

    threads = args.threads or default_threads()
    tasks = load_tasks("spider-dev", "train", sum(max(1, s // args.samples) for s in sizes) * args.rounds)
    sampling = SamplingParams(args.temperature, 0.95, args.max_new_tokens, stop=("```",))
    tokenizer = AutoTokenizer.from_pretrained(resolve("smollm2-135m").path)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731

    names = [b for b in args.backends.split(",") if b in ENGINES
             and (ENGINES[b] is None or importlib.util.find_spec(ENGINES[b]) is not None)]
    backends = {name: load_backend(name, "smollm2-135m", batch_size=max(sizes), threads=threads) for name in names}
    for variant in (v for v in args.ct2.split(",") if v):
        from codelutra_data.models.ct2 import CTranslate2Backend

        compute_type, _, parallel = variant.partition("/")
        label = f"ct2-{compute_type}" + (f"/{parallel}" if parallel else "")
        try:
            backends[label] = CTranslate2Backend(resolve("smollm2-135m"), batch_size=max(sizes), threads=threads,
                                                 compute_type=compute_type, inter_threads=int(parallel or 1))
        except ValueError as exc:  # a compute type this CPU's build of CTranslate2 cannot run (int16 without MKL)
            print(f"  {label}: not measured here: {exc}")
    try:
        for backend in backends.values():
            backend.generate([prompt_for(tasks[0])], 1, SamplingParams(0.0, 1.0, 4), 0)  # warm up, not timed
        totals = measure(backends, tasks, sizes, args.samples, sampling, args.rounds, count)
        print(f"Spider chat prompts x {args.samples} samples, {args.max_new_tokens} new tokens max, "
              f"T={args.temperature}, {threads} thread(s), {args.rounds} rounds taking turns")
        report(backends, totals, sizes, args.samples, "transformers")
        if args.agreement:
            agreement(backends, load_tasks("spider-dev", "train", args.agreement), args.max_new_tokens, count)
    finally:
        for backend in backends.values():
            getattr(backend, "close", lambda: None)()


def measure(backends: dict, tasks: list, sizes: list[int], samples: int, sampling: SamplingParams, rounds: int,
            count) -> dict[tuple[str, int], list]:
    """Seconds and output tokens per (backend, sequences per call): every backend and size takes its turn in every
    round; each (round, size) has prompts of its own, the same for every backend, so no engine's prefix cache
    serves one call from another's; a busy machine slows all alike."""
    slices, start = {}, 0
    for r in range(rounds):
        for size in sizes:
            slices[(r, size)] = [prompt_for(tasks[(start + i) % len(tasks)]) for i in range(max(1, size // samples))]
            start += len(slices[(r, size)])
    runs = [(name, size) for name in backends for size in sizes]
    totals = {run: [0.0, 0] for run in runs}
    for r in range(rounds):
        for name, size in runs:
            backend = backends[name]
            if hasattr(backend, "batch_size"):
                backend.batch_size = size
            prompts = slices[(r, size)]
            t0 = time.perf_counter()
            outputs = backend.generate(prompts, samples, sampling, r)
            totals[(name, size)][0] += time.perf_counter() - t0
            totals[(name, size)][1] += sum(count(c.text) for row in outputs for c in row)
    return totals


def report(backends: dict, totals: dict, sizes: list[int], samples: int, base_name: str) -> None:
    """Tokens/s per backend and size, with the ratio to `base_name` at the same size."""
    for size in sizes:
        print(f"{size} sequences per call ({max(1, size // samples)} prompts):")
        base = totals.get((base_name, size))
        for name in backends:
            seconds, tokens = totals[(name, size)]
            rate = tokens / seconds
            ratio = f", x{rate / (base[1] / base[0]):.2f} {base_name}" if base and name != base_name else ""
            print(f"  {name:<13} {backends[name].version}: {rate:.1f} tokens/s ({tokens} tokens in {seconds:.1f} s)"
                  f"{ratio}")


def agreement(backends: dict, tasks: list, max_new_tokens: int, count) -> None:
    """Greedy outputs of every engine against transformers' on the same prompts: identical outputs, and the share
    of tokens that agree before the first difference."""
    greedy = SamplingParams(0.0, 1.0, max_new_tokens, stop=("```",))
    prompts = [prompt_for(t) for t in tasks]
    outputs = {name: [row[0].text for row in backend.generate(prompts, 1, greedy, 0)]
               for name, backend in backends.items()}
    if "transformers" not in outputs:
        reference = load_backend("transformers", "smollm2-135m", threads=default_threads())
        outputs["transformers"] = [row[0].text for row in reference.generate(prompts, 1, greedy, 0)]
    print(f"greedy agreement with transformers on {len(prompts)} Spider prompts, {max_new_tokens} new tokens max:")
    for name, texts in outputs.items():
        if name == "transformers":
            continue
        same = sum(a == b for a, b in zip(texts, outputs["transformers"]))
        shared = total = 0
        for a, b in zip(texts, outputs["transformers"]):
            prefix = 0
            while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
                prefix += 1
            shared += count(b[:prefix])
            total += count(b)
        print(f"  {name:<13} identical {same}/{len(texts)} ({same / len(texts):.0%}); tokens agreeing before the "
              f"first difference: {shared / max(1, total):.1%}")


if __name__ == "__main__":
    main()
