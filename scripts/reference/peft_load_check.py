#!/usr/bin/env python3
"""Loads a qgoft snapshot folder with PEFT and compares PEFT's outputs with qgoft's.

    ~/.cache/qgoft/venv/bin/python scripts/reference/peft_load_check.py SNAPSHOT TEXTS.csv \
        --qgoft-predictions PRED.jsonl [--qgoft-embed EMBED.txt] [--max-len 128]

SNAPSHOT is `<session>/snapshots/step-N` (adapter_config.json, adapter_model.safetensors).
`PeftModel.from_pretrained(BertModel.from_pretrained(~/.cache/qgoft/minilm-l6), SNAPSHOT)` must
load every adapter tensor of the file (none missing, none unexpected apart from the head, which
qgoft saves under modules_to_save for a BertModel that has no classifier). Then, for the texts of
TEXTS.csv (column `text`):
  - PEFT's mean-pooled last hidden states (attention-masked mean, the qgoft head's input) through
    the snapshot's head tensors give logits, compared with `qgoft eval --predictions` (JSON Lines);
  - with --qgoft-embed, the L2-normalised pooled vectors' first 8 values, compared with the output
    of `qgoft embed --model <merged export>` (printed to 6 decimals).
Exits 1 on any mismatch beyond 1e-4 (logits) or 1e-5 (embedding values, printed to 6 decimals).
"""
import argparse
import csv
import json
import os
import re
import sys
import warnings

import torch
from safetensors import safe_open


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("snapshot")
    ap.add_argument("texts")
    ap.add_argument("--qgoft-predictions", required=True)
    ap.add_argument("--qgoft-embed")
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/qgoft/minilm-l6"))
    ap.add_argument("--fbd-standin", action="store_true",
                    help="BOFT with more than one factor on a CPU: PEFT forces boft_n_butterfly_factor to 1 "
                         "without its CUDA extension; install make_boft_fixture.py's torch stand-in for it")
    a = ap.parse_args()
    if a.fbd_standin:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import peft.tuners.boft.layer as boft_layer
        from make_boft_fixture import TorchBlockDiag
        boft_layer._FBD_CUDA = TorchBlockDiag

    from transformers import BertModel, BertTokenizer
    from peft import PeftModel

    cfg = json.load(open(os.path.join(a.snapshot, "adapter_config.json")))
    base = BertModel.from_pretrained(a.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(base, a.snapshot)
    model.eval()
    for m in sorted({str(w.message)[:160] for w in caught}):
        print("warning:", m)

    # Every adapter tensor of the file must have landed in the model.
    problems = []
    state = model.state_dict()
    with safe_open(os.path.join(a.snapshot, "adapter_model.safetensors"), "pt") as f:
        names = list(f.keys())
        head = {}
        adapter_names = [n for n in names if not n.startswith("base_model.model.classifier.")]
        for n in names:
            if n.startswith("base_model.model.classifier."):
                head[n.rsplit(".", 1)[1]] = f.get_tensor(n).double()
        for n in adapter_names:
            # PEFT's state dict names the adapter: ...oft_R.default.weight / ...boft_R.default
            m = re.match(r"(.*)\.(oft_R)\.weight$", n) or re.match(r"(.*)\.(boft_R|boft_s)$", n)
            if not m:
                problems.append(f"unexpected tensor {n}")
                continue
            key = m.group(1) + "." + m.group(2) + ".default" + (".weight" if m.group(2) == "oft_R" else "")
            if key not in state:
                problems.append(f"{n}: no {key} in the PEFT model")
                continue
            if not torch.equal(state[key].float(), f.get_tensor(n).float()):
                problems.append(f"{n}: PEFT holds different values")
    expected = [k for k in state if (".oft_R." in k or ".boft_R." in k or ".boft_s." in k)]
    print(f"peft_type {cfg['peft_type']}: {len(adapter_names)} adapter tensors in the file, "
          f"{len(expected)} adapter tensors in the PEFT model, {len(problems)} problems")
    if len(expected) != len(adapter_names):
        problems.append(f"PEFT model has {len(expected)} adapter tensors, the file {len(adapter_names)} (missing keys)")

    texts = [row["text"] for row in csv.DictReader(open(a.texts))]
    tok = BertTokenizer.from_pretrained(a.model)
    enc = tok(texts, padding=True, truncation=True, max_length=a.max_len, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state.double()
    mask = enc["attention_mask"].unsqueeze(-1).double()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    logits = pooled @ head["weight"].T + head["bias"]

    preds = [json.loads(line) for line in open(a.qgoft_predictions) if line.strip()]
    q = torch.tensor([p["logits"] for p in preds], dtype=torch.float64)
    if q.shape != logits.shape:
        problems.append(f"qgoft predictions {tuple(q.shape)} vs PEFT logits {tuple(logits.shape)}")
    else:
        err = (q - logits).abs().max().item()
        print(f"logits: {len(texts)} texts, max |qgoft - PEFT| = {err:.3g}")
        if err > 1e-4:
            problems.append(f"logits differ by {err}")

    if a.qgoft_embed:
        unit = pooled / pooled.norm(dim=1, keepdim=True)
        rows = [l for l in open(a.qgoft_embed) if l.startswith("[")]
        worst = 0.0
        for i, line in enumerate(rows):
            vals = [float(v) for v in line.split("]", 1)[1].split("norm=")[0].split()]
            worst = max(worst, max(abs(v - unit[i, j].item()) for j, v in enumerate(vals)))
        print(f"embeddings (merged export, first 8 values): {len(rows)} texts, max |qgoft - PEFT| = {worst:.3g}")
        if len(rows) != len(texts):
            problems.append(f"{len(rows)} embedding lines for {len(texts)} texts")
        if worst > 1e-5:
            problems.append(f"embeddings differ by {worst}")

    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
