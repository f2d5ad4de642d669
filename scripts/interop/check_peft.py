#!/usr/bin/env python3
"""PEFT loads qgoft's snapshots: for every method whose snapshots are PEFT adapters.

For each method (default: every method `qgoft info --json` marks as PEFT-loadable) it trains a few
steps with qgoft at a high learning rate (so that every adapter moves away from its
initialisation), then

  1. loads the newest snapshot with PEFT:
         PeftModel.from_pretrained(BertModel.from_pretrained(<minilm folder>), <snapshot folder>)
     and checks that every adapter tensor PEFT expects is in the file and that PEFT holds exactly
     the file's values (no missing, no unexpected adapter keys);
  2. runs real sentences through PEFT's model, mean-pools the last hidden state over the real
     tokens, applies the snapshot's head (`classifier.weight` / `.bias`, PEFT's modules_to_save
     naming) and compares those logits with `qgoft eval --predictions` on the same sentences;
  3. checks that the adapters changed the logits (the comparison is not between two identities).

Exit status 0 when every method passes, 1 on a mismatch, 2 on bad input.

    check_peft.py --qgoft .build/release/qgoft --work DIR [--methods lora,oft] [--steps 6] [--tol 1e-4]
"""
import argparse
import csv
import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

MODEL = os.path.expanduser(os.environ.get("QGOFT_MINILM", "~/.cache/qgoft/minilm-l6"))
PREFIX = "base_model.model."
HEAD = PREFIX + "classifier."

SENTENCES = [
    ("a gorgeous, witty, seductive movie.", 1),
    ("the story is too thin to hold the two hours, and the jokes fall flat.", 0),
    ("an utterly charming and hilarious film that reminded me why i love going to the movies.", 1),
    ("it's a bad sign when you're rooting for the film to end.", 0),
    ("visually stunning but emotionally hollow", 0),
    ("one of the year's best", 1),
    ("if you've seen the trailer you've seen the best parts; the rest is padding and noise.", 0),
    ("the performances are uniformly strong, especially the two leads.", 1),
]


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.stderr.write(f"check_peft: {' '.join(cmd)} failed with status {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}\n")
        sys.exit(1)
    return r.stdout


def peft_methods(qgoft):
    info = json.loads(run([qgoft, "info", "--json"]))
    return [m["method"] for m in info["methods"] if m["peft_loads"]]


def newest_snapshot(session_dir):
    snaps = os.path.join(session_dir, "snapshots")
    steps = sorted(int(n[5:]) for n in os.listdir(snaps) if n.startswith("step-") and n[5:].isdigit())
    if not steps:
        raise SystemExit(f"check_peft: {snaps} has no snapshot")
    return os.path.join(snaps, f"step-{steps[-1]}")


def peft_logits(snapshot, max_length):
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict
    from transformers import AutoTokenizer, BertModel
    base = BertModel.from_pretrained(MODEL)
    model = PeftModel.from_pretrained(base, snapshot)
    model.eval()
    saved = load_file(os.path.join(snapshot, "adapter_model.safetensors"))
    adapter_saved = {k: v for k, v in saved.items() if not k.startswith(HEAD)}
    held = get_peft_model_state_dict(model)
    held = {k: v for k, v in held.items() if not k.startswith(HEAD) and ".classifier." not in k}
    missing = sorted(set(held) - set(adapter_saved))
    unexpected = sorted(set(adapter_saved) - set(held))
    problems = []
    if missing:
        problems.append(f"PEFT expects {len(missing)} adapter tensors the snapshot lacks, e.g. {missing[0]}")
    if unexpected:
        problems.append(f"the snapshot has {len(unexpected)} tensors PEFT does not use, e.g. {unexpected[0]}")
    for k in sorted(set(held) & set(adapter_saved)):
        if held[k].shape != adapter_saved[k].shape or not torch.equal(held[k].float(), adapter_saved[k].float()):
            problems.append(f"PEFT holds another value for {k} (shape {tuple(held[k].shape)}, file {tuple(adapter_saved[k].shape)})")
            break
    tok = AutoTokenizer.from_pretrained(MODEL)
    enc = tok([s for s, _ in SENTENCES], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    with torch.no_grad():
        bert = model.base_model.model  # BertModel with PEFT's layers in place
        h = bert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        pooled = (h * mask).sum(1) / mask.sum(1)
        logits = pooled @ saved[HEAD + "weight"].T + saved[HEAD + "bias"]
        with model.disable_adapter():
            h0 = bert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        plain = (h0 * mask).sum(1) / mask.sum(1) @ saved[HEAD + "weight"].T + saved[HEAD + "bias"]
    return logits, plain, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qgoft", required=True, help="the qgoft executable")
    ap.add_argument("--work", required=True, help="a scratch folder (sessions and files go there)")
    ap.add_argument("--methods", help="comma-separated methods (default: every PEFT-loadable one)")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--lr", type=float, default=2e-2, help="high, so that the adapters move")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    if not os.path.isdir(MODEL):
        sys.stderr.write(f"check_peft: no model folder {MODEL} (run `qgoft fetch` first)\n")
        return 2
    methods = a.methods.split(",") if a.methods else peft_methods(a.qgoft)
    if not methods:
        sys.stderr.write("check_peft: no methods to check\n")
        return 2
    os.makedirs(a.work, exist_ok=True)
    data = os.path.join(a.work, "sentences.csv")
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for s, l in SENTENCES:
            w.writerow([s, l])
    failed = 0
    for m in methods:
        sessions = os.path.join(a.work, f"sessions-{m}")
        out = run([a.qgoft, "train", "--headless", "--method", m, "--max-steps", str(a.steps), "--batch-size", "8",
                   "--lr", str(a.lr), "--eval-every", "1000", "--sessions-dir", sessions])
        folders = [os.path.join(sessions, d) for d in os.listdir(sessions) if os.path.isdir(os.path.join(sessions, d))]
        if len(folders) != 1:
            sys.stderr.write(f"check_peft: expected one session in {sessions}, found {len(folders)}\n{out[-1000:]}\n")
            return 2
        session = folders[0]
        snapshot = newest_snapshot(session)
        with open(os.path.join(session, "session.json")) as f:
            max_length = json.load(f)["configuration"]["maxLength"]
        preds = os.path.join(a.work, f"{m}.jsonl")
        if os.path.exists(preds):
            os.remove(preds)
        run([a.qgoft, "eval", os.path.basename(session), "--data", data, "--predictions", preds, "--sessions-dir", sessions])
        with open(preds) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        ours = torch.tensor([r["logits"] for r in sorted(rows, key=lambda r: r["index"])], dtype=torch.float32)
        try:
            theirs, plain, problems = peft_logits(snapshot, max_length)
        except Exception as e:  # PEFT refused the folder
            print(f"FAIL {m}: PEFT cannot load {snapshot}: {type(e).__name__}: {e}")
            failed += 1
            continue
        diff = (ours - theirs).abs().max().item()
        moved = (theirs - plain).abs().max().item()
        if diff > a.tol:
            problems.append(f"logits differ by {diff:.3g} (> {a.tol:g})")
        if moved < 100 * a.tol:
            problems.append(f"the adapters barely change the logits ({moved:.3g}): the check would not see a wrong adapter")
        if problems:
            print(f"FAIL {m}: " + "; ".join(problems))
            failed += 1
        else:
            print(f"PASS {m}: PeftModel.from_pretrained loads {snapshot} with every adapter key; "
                  f"logits of {len(SENTENCES)} sentences within {diff:.2g} of qgoft's (adapters move them by {moved:.3g})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
