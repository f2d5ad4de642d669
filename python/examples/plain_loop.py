#!/usr/bin/env python3
"""A plain PyTorch training loop (no Hugging Face Trainer) recorded with SessionRecorder and
steered through the session's commands.jsonl.

    python plain_loop.py --session-dir sessions/plain-run [--steps 60] [--method goft --layout butterfly]

The model is small and synthetic (two linear layers with qGOFT/GOFT adapters and a `classifier`
head) so that it runs in seconds anywhere; the recorder calls are the same for any model. While it
runs, steer it from another terminal, e.g.

    python -c "import qgoft_torch; qgoft_torch.append_command('sessions/plain-run', 'pause')"
    python -c "import qgoft_torch; qgoft_torch.append_command('sessions/plain-run', 'set_lambda', 0.01)"
    python -c "import qgoft_torch; qgoft_torch.append_command('sessions/plain-run', 'resume')"

(or `qgoft attach sessions/plain-run`). `qgoft inspect sessions/plain-run --print` reads it.
Under torchrun every rank runs the same loop; rank 0 alone writes the session.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import qgoft_torch


class Net(nn.Module):
    def __init__(self, d=64, classes=3):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList()
        for _ in range(2):
            lay = nn.Module()
            lay.intermediate = nn.Module()
            lay.intermediate.dense = nn.Linear(d, d)
            self.encoder.layer.append(lay)
        self.classifier = nn.Linear(d, classes)

    def forward(self, x):
        for lay in self.encoder.layer:
            x = torch.tanh(lay.intermediate.dense(x))
        return self.classifier(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--session-dir", required=True)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--method", default="qgoft", choices=["qgoft", "goft"])
    ap.add_argument("--layout", default="tree", choices=["tree", "butterfly"])
    ap.add_argument("--lam", type=float, default=1e-3)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds per step, to leave time to steer a demo")
    args = ap.parse_args()
    torch.manual_seed(0)
    d, classes = 64, 3
    teacher = torch.randn(d, classes)
    model = Net(d, classes)
    adapters = qgoft_torch.apply_adapters(model, ["intermediate.dense"], method=args.method, layout=args.layout,
                                          lam=args.lam)
    opt = torch.optim.AdamW(adapters.trainable_parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 5) * max(0.0, 1 - s / args.steps))

    def evaluate(step):
        with torch.no_grad():
            x = torch.randn(256, d, generator=torch.Generator().manual_seed(1))
            y = (x @ teacher).argmax(1)
            logits = model(x)
            return {"loss": F.cross_entropy(logits, y).item(), "accuracy": (logits.argmax(1) == y).float().mean().item(),
                    "samples": 256}

    rec = qgoft_torch.SessionRecorder(adapters, args.session_dir, optimizer=opt, scheduler=sched,
                                      total_steps=args.steps, model="synthetic", stats_every=10,
                                      data={"name": "synthetic", "labels": ["a", "b", "c"]},
                                      config={"batchSize": 32}, evaluate=evaluate)
    step = 0
    try:
        for step in range(1, args.steps + 1):
            t0 = time.time()
            x = torch.randn(32, d)
            y = (x @ teacher).argmax(1)
            task = F.cross_entropy(model(x), y)
            pen = adapters.penalty()
            (task + adapters.lam * pen).backward()
            lr = opt.param_groups[0]["lr"]
            opt.step()
            opt.zero_grad()
            sched.step()
            time.sleep(args.sleep)
            ctl = rec.step(step, task_loss=task.item(), penalty=pen.item(), lr=lr, tokens=32,
                           step_seconds=time.time() - t0)
            if step % 20 == 0:
                rec.run_evaluation(step)
            if ctl.stop:
                break
    except BaseException as e:
        rec.close(error=f"{type(e).__name__}: {e}")
        raise
    rec.close()
    print(f"session {rec.session_dir}: {rec.status} after {step} steps")


if __name__ == "__main__":
    main()
