#!/usr/bin/env python3
"""Interop checks between qgoft and qgoft-torch (run by scripts/torch/check.sh).

  interop.py predict SNAPSHOT DATA.csv OUT.jsonl [--max-length N]
      loads a snapshot (qgoft's or qgoft-torch's) into MeanPoolClassifier + adapters of
      ~/.cache/qgoft/minilm-l6 and writes the per-row predictions of every row of DATA.csv in the
      format of `qgoft eval --predictions FILE.jsonl`.
  interop.py compare A.jsonl B.jsonl [--tol 1e-4]
      the same rows, labels and predicted classes, and logits within --tol; exits 1 otherwise.
"""
import argparse
import csv
import json
import os
import sys

import torch

MODEL = os.path.expanduser(os.environ.get("QGOFT_MINILM", "~/.cache/qgoft/minilm-l6"))


def load_model(snapshot):
    import qgoft_torch
    from qgoft_torch.hf import MeanPoolClassifier
    with open(os.path.join(snapshot, "qgoft_snapshot.json")) as f:
        side = json.load(f)
    model = MeanPoolClassifier.from_pretrained(MODEL, classes=side["head"]["classes"])
    ad = qgoft_torch.apply_adapters(model, [m["module"] for m in side["modules"]], method=side["method"],
                                    layout=side["layout"], goft_scaling=side.get("goft_scaling", True))
    qgoft_torch.load_snapshot(snapshot, ad)
    model.eval()
    return model, side


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


@torch.no_grad()
def predict(model, texts, max_length, batch=32):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(MODEL)
    out = []
    for i in range(0, len(texts), batch):
        enc = tok(texts[i:i + batch], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        out.append(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])["logits"].float())
    return torch.cat(out)


def write_predictions(path, logits, labels):
    with open(path, "w") as f:
        for i, (l, y) in enumerate(zip(logits.tolist(), labels)):
            f.write(json.dumps({"index": i, "label": y, "predicted": int(max(range(len(l)), key=lambda c: l[c])),
                                "logits": l}) + "\n")


def read_predictions(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def compare(a_path, b_path, tol):
    a, b = read_predictions(a_path), read_predictions(b_path)
    if len(a) != len(b):
        print(f"FAIL {a_path} has {len(a)} rows, {b_path} {len(b)}")
        return 1
    worst, flips = 0.0, 0
    for x, y in zip(a, b):
        if (x["index"], x["label"]) != (y["index"], y["label"]):
            print(f"FAIL row {x['index']}: index/label differ ({x['index']}, {x['label']}) vs ({y['index']}, {y['label']})")
            return 1
        worst = max(worst, max(abs(p - q) for p, q in zip(x["logits"], y["logits"])))
        flips += x["predicted"] != y["predicted"]
    ok = worst <= tol and flips == 0
    print(f"{'ok' if ok else 'FAIL'}: {len(a)} rows, max |logit diff| {worst:.3g} (tol {tol:g}), {flips} predictions differ")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("predict")
    p.add_argument("snapshot")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--max-length", type=int, default=None)
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    if args.cmd == "compare":
        sys.exit(compare(args.a, args.b, args.tol))
    torch.set_num_threads(int(os.environ.get("QGOFT_TORCH_THREADS", "1")))
    model, side = load_model(args.snapshot)
    max_length = args.max_length
    if max_length is None:
        sess = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.snapshot))), "session.json")
        with open(sess) as f:
            max_length = json.load(f)["configuration"]["maxLength"]
    texts, labels = read_rows(args.data)
    write_predictions(args.out, predict(model, texts, max_length), labels)
    print(f"predictions of {len(texts)} rows of {args.data} from {args.snapshot} written to {args.out}")


if __name__ == "__main__":
    main()
