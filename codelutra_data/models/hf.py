"""The `transformers` backend: CPU or GPU, left-padded batches of prompts x samples."""

from __future__ import annotations

from codelutra_data.errors import UserError
from codelutra_data.machine import default_threads
from codelutra_data.models.base import Completion, LocalWeights, SamplingParams
from codelutra_data.models.spec import ModelRef, resolve
from codelutra_data.records import Message


GPU_BATCH = 512
CPU_BATCH = 32


class TransformersBackend(LocalWeights):
    name = "transformers"
    seeded = True
    exactness = "the reference engine (float32 on CPU, bfloat16 on GPU)"
    requires = None  # torch and transformers are dependencies of codelutra-data

    @classmethod
    def load(cls, spec: str, engine) -> "TransformersBackend":
        return cls(resolve(spec), batch_size=engine.batch_size, threads=engine.threads)

    @classmethod
    def preferred_batch(cls, engine) -> tuple[int, str]:
        import torch

        if torch.cuda.is_available():
            return GPU_BATCH, "transformers on a GPU: 512 sequences per call (3.7k tokens/s on an H100, 2026-11-22)"
        return CPU_BATCH, "transformers on CPU: 32 sequences per call measured fastest (benchmarks/speed/generation.py)"

    @classmethod
    def describe(cls) -> str:
        from importlib.metadata import version

        import torch

        device = f"CUDA ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "CPU"
        return (f"torch {torch.__version__}, transformers {version('transformers')}, on {device}, "
                f"{default_threads()} CPU thread(s)")

    def __init__(self, ref: ModelRef, batch_size: int = 32, device: str | None = None, threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        import transformers

        self.ref = ref
        self.version = f"transformers {transformers.__version__} (torch {torch.__version__})"
        self.batch_size = max(1, batch_size)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":
            # torch's default may leave cores idle, and more threads than free cores slow generation several
            # times over: an explicit --threads, else OMP_NUM_THREADS, else the cores we may use.
            torch.set_num_threads(threads or default_threads())
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(ref.path)
            dtype = torch.float32 if self.device == "cpu" else torch.bfloat16
            self.model = AutoModelForCausalLM.from_pretrained(ref.path, dtype=dtype).to(self.device).eval()
        except OSError as exc:
            raise UserError(f"cannot load model {ref.spec!r}: {str(exc).splitlines()[0]}") from None
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        stops = {self.tokenizer.eos_token_id}
        im_end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != self.tokenizer.unk_token_id:
            stops.add(im_end)
        self.stop_ids = sorted(i for i in stops if i is not None)

    def generate(self, prompts: list[list[Message]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        import torch

        per_call = self._fits(prompts, n, sampling)
        out: list[list[Completion]] = []
        for start in range(0, len(prompts), per_call):
            chunk = prompts[start:start + per_call]
            texts = [self._render(p) for p in chunk]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            torch.manual_seed(seed + start)
            greedy = sampling.temperature <= 0
            copies = 1 if greedy else n  # greedy decoding repeats itself: one sequence per prompt, copied n times
            kwargs = dict(max_new_tokens=sampling.max_new_tokens, num_return_sequences=copies, do_sample=not greedy,
                          eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id)
            if sampling.stop:
                kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
            if not greedy:
                kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            with torch.inference_mode():
                generated = self.model.generate(**enc, **kwargs)
            new = generated[:, enc["input_ids"].shape[1]:]
            decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            done = [self._completion(row.tolist(), text, sampling) for row, text in zip(new, decoded)]
            out.extend(done[i * copies:(i + 1) * copies] * (n // copies) for i in range(len(chunk)))
        return out

    def _fits(self, prompts: list[list[Message]], n: int, sampling: SamplingParams) -> int:
        """Prompts per model call: --batch-size sequences, fewer where memory would not hold them (whole calls of
        n samples, at least one prompt)."""
        from codelutra_data.models.memory import sequences_that_fit

        longest = max(len(self.tokenizer(self._render(p), add_special_tokens=False)["input_ids"]) for p in prompts)
        fit = sequences_that_fit(self.model.config, longest + sampling.max_new_tokens,
                                 next(self.model.parameters()).element_size(), self.device == "cuda")
        return max(1, min(self.batch_size, fit or self.batch_size) // max(1, n))

    def _completion(self, ids: list[int], text: str, sampling: SamplingParams) -> Completion:
        """A finished row is padded after its end: an end token counts as generated, the padding does not. A row
        stopped by a stop string is padded right after it (pad may be the end token's id, so look at the text)."""
        cut = cut_at_stop(text, sampling.stop)
        ends = set(self.stop_ids) | {self.tokenizer.pad_token_id}
        first_end = next((i for i, t in enumerate(ids) if t in ends), -1)
        if cut != text or any(s in text for s in sampling.stop):
            return Completion(cut, first_end if first_end >= 0 else len(ids), "stop")
        if first_end >= 0:
            return Completion(cut, first_end + 1, "stop")
        return Completion(cut, len(ids), "length")

    def _render(self, messages: list[Message]) -> str:
        if messages and messages[-1]["role"] == "assistant":
            return self.tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """Keep text up to and including the earliest stop string (generation may run a few tokens past it)."""
    ends = [text.find(s) + len(s) for s in stops if s in text]
    return text[: min(ends)] if ends else text
