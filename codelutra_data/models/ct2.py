"""The `ctranslate2` backend: CTranslate2's CPU generator on a float32 conversion of the model.

Float32 keeps greedy output token-identical to `transformers` (tested), so verdicts and pairs do not change
with the engine; `num_hypotheses` gives n samples per prompt in one pass and each sequence stops on its own.
Sampling is NOT reproducible from the seed (the generator's worker threads keep their own random state):
a resumed build is still exact for what was recorded, but a chunk redone after a kill differs.
Any model `transformers` loads converts (the bundled one, a trained directory, a Hub id); the conversion is
done once and cached under the cache folder, keyed by the model's identity and files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from codelutra_data.errors import UserError
from codelutra_data.machine import default_threads
from codelutra_data.models.base import Completion, LocalWeights, SamplingParams
from codelutra_data.models.hf import cut_at_stop
from codelutra_data.models.spec import ModelRef, resolve
from codelutra_data.paths import cache_dir
from codelutra_data.records import Message, content_hash


SOURCE = "source.json"  # in each conversion: what it was converted from, so a stale one can be recognised


def conversion_key(ref: ModelRef) -> str:
    """The model's identity, and for a local directory its files (a retrained model gets a new conversion)."""
    return _key(ref.model_id, ref.revision, ref.path)


def _key(model_id: str, revision: str | None, source: str) -> str:
    path = Path(source)
    files = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.iterdir() if p.is_file()) \
        if path.is_dir() else []
    return content_hash(model_id, revision, str(path.resolve()) if path.is_dir() else source, files)


def converted(ref: ModelRef) -> Path:
    """The float32 CTranslate2 folder for a model, converting it once (to a temporary folder, then renamed)."""
    from filelock import FileLock

    root = cache_dir() / "ctranslate2"
    target = root / conversion_key(ref)
    if (target / "model.bin").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{target.name}.lock")):
        if (target / "model.bin").exists():
            return target
        from ctranslate2.converters import TransformersConverter

        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{target.name}-"))
        try:
            TransformersConverter(ref.path).convert(str(tmp / "model"), quantization="float32", force=True)
            source = {"model_id": ref.model_id, "revision": ref.revision, "path": ref.path}
            (tmp / "model" / SOURCE).write_text(json.dumps(source), encoding="utf-8")
            (tmp / "model").rename(target)
        except Exception as exc:  # noqa: BLE001 - the converter raises many kinds; one line for the user
            raise UserError(f"cannot convert {ref.spec!r} for CTranslate2: {str(exc).splitlines()[0]}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    prune_stale(root)
    return target


def prune_stale(root: Path) -> list[str]:
    """Delete the conversions nothing can ask for again: of model directories that are gone or whose files have
    changed since (each is the model's size in float32, and a refine loop trains a new model every iteration).
    Runs after each new conversion; one being made or pruned elsewhere (its lock held) is left alone."""
    from filelock import FileLock, Timeout

    removed = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            source = json.loads((folder / SOURCE).read_text(encoding="utf-8"))
            path = Path(source["path"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # no record of its source (made by an older version): kept
        if not (path.is_absolute() or path.exists()):
            continue  # a Hub id or a spec, not a local directory
        try:
            if path.is_dir() and _key(source.get("model_id"), source.get("revision"), str(path)) == folder.name:
                continue
        except OSError:
            pass
        lock = FileLock(str(root / f".{folder.name}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        try:
            doomed = folder.with_name(f".{folder.name}.stale-{os.getpid()}")
            folder.rename(doomed)  # gone at once for any reader; then deleted
            shutil.rmtree(doomed, ignore_errors=True)
            removed.append(folder.name)
        finally:
            lock.release()
            Path(lock.lock_file).unlink(missing_ok=True)
    return removed


class CTranslate2Backend(LocalWeights):
    name = "ctranslate2"
    seeded = False  # its worker thread keeps one random stream per process
    exactness = "float32: greedy output token-identical to transformers (tested)"
    requires = ("ctranslate2", "pip install ctranslate2 (a dependency of codelutra-data: reinstall it)")

    @classmethod
    def load(cls, spec: str, engine) -> "CTranslate2Backend":
        return cls(resolve(spec), batch_size=engine.batch_size, threads=engine.threads)

    @classmethod
    def preferred_batch(cls, engine) -> tuple[int, str]:
        return 32, "ctranslate2 on CPU: 32 sequences per call measured fastest (benchmarks/speed/generation.py)"

    @classmethod
    def describe(cls) -> str:
        from importlib.metadata import version

        return (f"ctranslate2 {version('ctranslate2')}, CPU float32: greedy output identical to transformers; "
                f"sampling is not reproducible from the seed")

    def __init__(self, ref: ModelRef, batch_size: int = 32, threads: int | None = None,
                 compute_type: str = "float32", inter_threads: int = 1):
        """`compute_type` other than float32 (int8, int16: weights quantized on load) and `inter_threads` (batches
        run in parallel, each on threads / inter_threads cores) are what benchmarks/speed/generation.py measures;
        builds run float32 on one batch at a time (exact)."""
        try:
            import ctranslate2
        except ImportError:
            raise UserError("the ctranslate2 backend needs ctranslate2: pip install ctranslate2 (a dependency of codelutra-data: reinstall it)") from None
        from transformers import AutoConfig, AutoTokenizer

        self.ref = ref
        self.version = f"ctranslate2 {ctranslate2.__version__} ({compute_type})" + (
            f", {inter_threads} parallel batches" if inter_threads > 1 else "")
        self.batch_size = max(1, batch_size)
        self.threads = threads or default_threads()
        self.inter_threads = max(1, inter_threads)
        self.tokenizer = AutoTokenizer.from_pretrained(ref.path)
        self.config = AutoConfig.from_pretrained(ref.path)
        self.generator = ctranslate2.Generator(str(converted(ref)), device="cpu", compute_type=compute_type,
                                               intra_threads=max(1, self.threads // self.inter_threads),
                                               inter_threads=self.inter_threads)
        ends = {self.tokenizer.eos_token, "<|im_end|>"}
        self.end_tokens = sorted(t for t in ends if t and self.tokenizer.convert_tokens_to_ids(t) is not None)

    @lru_cache(maxsize=8)
    def _stop_tokens(self, stops: tuple[str, ...]) -> tuple[str, ...]:
        """Vocabulary entries whose text contains a stop string: each sequence ends when it emits one, and
        the text is then cut exactly at the stop string, as the transformers backend does."""
        if not stops:
            return ()
        vocab = self.tokenizer.get_vocab()
        return tuple(sorted(tok for tok, i in vocab.items()
                            if any(s in self.tokenizer.decode([i]) for s in stops)))

    def _fits(self, rendered: list[list[str]], n: int, sampling: SamplingParams) -> int:
        """Prompts per batch: --batch-size sequences, fewer where memory would not hold them (float32 KV cache)."""
        from codelutra_data.models.memory import sequences_that_fit

        longest = max(len(r) for r in rendered)
        fit = sequences_that_fit(self.config, longest + sampling.max_new_tokens, 4)
        per_batch = max(1, min(self.batch_size, fit or self.batch_size) // max(1, n))
        return min(per_batch, -(-len(rendered) // self.inter_threads))  # one batch per parallel worker at least

    def _render(self, messages: list[Message]) -> list[str]:
        if messages and messages[-1]["role"] == "assistant":
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
        else:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer.convert_ids_to_tokens(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, prompts: list[list[Message]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        import ctranslate2

        greedy = sampling.temperature <= 0
        options = dict(max_length=sampling.max_new_tokens, include_prompt_in_result=False, return_end_token=True,
                       end_token=self.end_tokens + list(self._stop_tokens(tuple(sampling.stop))))
        if greedy:
            options.update(sampling_topk=1)
        else:
            options.update(sampling_topk=0, sampling_topp=sampling.top_p, sampling_temperature=sampling.temperature,
                           num_hypotheses=n)
        ctranslate2.set_random_seed(seed)
        rendered = [self._render(p) for p in prompts]
        options.update(max_batch_size=self._fits(rendered, n, sampling))
        shared = shared_prefix(rendered)
        if shared >= 16:
            # A chunk's prompts usually share the system prompt and the schema (hundreds of tokens): that prefix
            # is run once as CTranslate2's static prompt instead of once per sequence (n copies per prompt).
            # Greedy output stays token-identical (tested).
            options.update(static_prompt=rendered[0][:shared], cache_static_prompt=False)
            rendered = [r[shared:] for r in rendered]
        results = self.generator.generate_batch(rendered, **options)
        end_ids = set(self.tokenizer.convert_tokens_to_ids(options["end_token"]))
        out = []
        for result in results:
            done = [Completion(cut_at_stop(self.tokenizer.decode(ids, skip_special_tokens=True), sampling.stop),
                               len(ids), "stop" if ids and ids[-1] in end_ids else "length")
                    for ids in result.sequences_ids]
            out.append(done * n if greedy else done)
        return out


def shared_prefix(sequences: list[list[str]]) -> int:
    """Length of the tokens every sequence starts with, leaving each at least one token of its own."""
    limit = min(len(x) for x in sequences) - 1
    k = 0
    while k < limit and all(x[k] == sequences[0][k] for x in sequences):
        k += 1
    return k
