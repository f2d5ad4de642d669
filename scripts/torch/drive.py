#!/usr/bin/env python3
"""Steers a running qgoft-torch session through its commands.jsonl and checks what every rank did
(scripts/torch/check.sh runs it beside `torchrun ... python/examples/train_hf.py`).

  drive.py SESSION_DIR --rank-log DIR --world N [--timeout S] [--attach QGOFT_BINARY]

With --attach the commands are keys typed into `qgoft attach SESSION_DIR` running under tmux
(Space, +, n, ], s, Space), and the attached screen is checked as well (PAUSED while paused,
nothing pending once the run has answered); without it they are lines appended to commands.jsonl.

set_lambda 2x while running, pause (the step counter stops on every rank), step (exactly one
more), set_lr 2x and snapshot while paused, resume; then: every command acknowledged exactly once,
lambda doubled on every rank from the same step, the lr of every later step doubled (the HF
schedule keeps its shape), the snapshot complete, the run finished. Prints PASS/FAIL per check.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
from qgoft_torch.commands import append_command  # noqa: E402

FAILED = []


def check(ok, what):
    print(f"{'PASS' if ok else 'FAIL'}  {what}", flush=True)
    if not ok:
        FAILED.append(what)
    return ok


def jsonl(path):
    try:
        with open(path) as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.split("\n")[:-1]:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


class Session:
    def __init__(self, d, rank_log, world):
        self.d, self.rank_log, self.world = d, rank_log, world

    def info(self):
        with open(os.path.join(self.d, "session.json")) as f:
            return json.load(f)

    def steps(self):
        return [m for m in jsonl(os.path.join(self.d, "metrics.jsonl")) if m.get("type") == "step"]

    def last_step(self):
        s = self.steps()
        return s[-1]["step"] if s else 0

    def events(self):
        return jsonl(os.path.join(self.d, "events.jsonl"))

    def acks(self, cid):
        return [e for e in self.events() if isinstance(e.get("command"), dict) and e["command"].get("id") == cid]

    def ranks(self):
        return {r: jsonl(os.path.join(self.rank_log, f"rank-{r}.jsonl")) for r in range(self.world)}


class Attached:
    """`qgoft attach SESSION` in a tmux session of its own; keys in, screen out."""

    KEYS = {"pause": "Space", "resume": "Space", "step": "n", "set_lambda": "+", "set_lr": "]", "snapshot": "s"}

    def __init__(self, qgoft, session):
        self.sock = f"qgoft-drive-{os.getpid()}"
        self.tmux("new-session", "-d", "-s", "attach", "-x", "120", "-y", "40", f"'{qgoft}' attach '{session}'; sleep 600")

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True, check=False).stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "attach")

    def key(self, name):
        self.tmux("send-keys", "-t", "attach", self.KEYS[name])

    def close(self):
        self.tmux("kill-server")


def wait(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    check(False, f"{what} (waited {timeout:.0f} s)")
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("session")
    ap.add_argument("--rank-log", required=True)
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--hold", type=float, default=3.0, help="seconds to watch a paused run")
    ap.add_argument("--attach", metavar="QGOFT", help="steer with keys typed into `QGOFT attach` under tmux")
    a = ap.parse_args()
    s = Session(a.session, a.rank_log, a.world)
    wait(lambda: os.path.exists(os.path.join(a.session, "lock")) and os.path.exists(os.path.join(a.session, "session.json")),
         a.timeout, "the session and its lock appear")
    attached = Attached(a.attach, a.session) if a.attach else None
    try:
        drive(a, s, attached)
    finally:
        if attached:
            attached.close()
    sys.exit(1 if FAILED else 0)


def drive(a, s, attached):
    info = s.info()
    lam0 = info["configuration"]["lambda"]
    peak0 = info["configuration"]["learningRate"]
    total = info["run"]["totalSteps"]
    who = f"drive.py pid {os.getpid()}"

    sent = {}

    def send(name, cid, value=None):
        """One command, as a channel line or as attach's key; remembers how to find its answer."""
        if attached is None:
            append_command(a.session, name, value, cid=cid, sender=who)
            sent[cid] = None
        else:
            sent[cid] = (name, len(s.events()))
            attached.key(name)

    def answers(cid):
        if sent.get(cid) is None:
            return s.acks(cid)
        name, before = sent[cid]
        return [e for e in s.events()[before:] if isinstance(e.get("command"), dict) and e["command"].get("name") == name]

    def ack(cid):
        e = wait(lambda: answers(cid), a.timeout, f"{cid} is acknowledged")[0]
        if attached is not None:
            check(e["command"]["id"].startswith("attach-"), f"{cid}: sent by qgoft attach ({e['command']['id']})")
        return e

    if attached is not None:
        wait(lambda: "steering" in attached.screen(), a.timeout, "the attached screen")

    # 1. set_lambda while running
    wait(lambda: s.last_step() >= 3, a.timeout, "three steps")
    send("set_lambda", "drv-lambda", 2 * lam0)
    e = ack("drv-lambda")
    t_lam = e["step"]
    check(e["kind"] == "lambdaChanged" and e["command"]["status"] == "applied" and e["to"] == 2 * lam0,
          f"set_lambda {2 * lam0:g} applied at step {t_lam} ({e['kind']})")

    # 2. pause: the counter stops on every rank
    wait(lambda: s.last_step() >= t_lam + 3, a.timeout, "three more steps")
    send("pause", "drv-pause")
    e = ack("drv-pause")
    sp = e["step"]
    check(e["kind"] == "paused", f"pause applied at step {sp}")
    time.sleep(a.hold)
    ranks = s.ranks()
    check(s.last_step() == sp, f"no step recorded after step {sp} during {a.hold:g} s of pause (last {s.last_step()})")
    check(all(r and r[-1]["step"] == sp for r in ranks.values()),
          f"every rank's last step is {sp} while paused: {[r[-1]['step'] if r else None for r in ranks.values()]}")
    check(s.info()["status"] == "paused", "session.json says paused")
    if attached is not None:
        screen = wait(lambda: (lambda t: t if "PAUSED" in t and "pending" not in t else None)(attached.screen()), 30,
                      "the attached screen shows PAUSED, nothing pending")
        check(f"step {sp}/" in screen, f"the attached screen shows step {sp}")
    with open(os.path.join(a.session, "lock")) as f:
        hb = json.load(f)["heartbeat"]
    check(time.time() - hb < 12, f"the lock's heartbeat is fresh while paused ({time.time() - hb:.1f} s old)")

    # 3. step: exactly one more
    send("step", "drv-step")
    e = ack("drv-step")
    check(e["kind"] == "stepOnce" and e["step"] == sp, f"step applied at step {sp}")
    wait(lambda: s.last_step() >= sp + 1, a.timeout, "the one step")
    time.sleep(min(2.0, a.hold))
    ranks = s.ranks()
    check(s.last_step() == sp + 1 and all(r[-1]["step"] == sp + 1 for r in ranks.values()),
          f"exactly one step ran on every rank (now {s.last_step()}, ranks {[r[-1]['step'] for r in ranks.values()]})")

    # 4. set_lr and snapshot while paused
    sb = sp + 1
    send("set_lr", "drv-lr", 2 * peak0)
    e = ack("drv-lr")
    check(e["kind"] == "lrChanged" and e["step"] == sb and e["to"] == 2 * peak0, f"set_lr {2 * peak0:g} applied at step {sb}")
    send("snapshot", "drv-snap")
    e = ack("drv-snap")
    snap = e.get("path", "")
    files = sorted(os.listdir(snap)) if os.path.isdir(snap) else []
    check(e["kind"] == "snapshotSaved" and os.path.basename(snap) == f"step-{sb}" and files == sorted(
        ["adapter_config.json", "adapter_model.safetensors", "qgoft_snapshot.json", "trainer_state.json",
         "optimizer.safetensors"]), f"snapshot step-{sb} written with its five files ({files})")
    if files:
        with open(os.path.join(snap, "trainer_state.json")) as f:
            st = json.load(f)
        check(st["step"] == sb and st["lambda"] == 2 * lam0 and st["learning_rate"] == 2 * peak0,
              f"the snapshot holds step {st['step']}, lambda {st['lambda']:g}, lr {st['learning_rate']:g}")

    # 5. resume, to the end
    send("resume", "drv-resume")
    e = ack("drv-resume")
    check(e["kind"] == "unpaused" and e["step"] == sb, f"resume applied at step {sb}")
    wait(lambda: s.info()["status"] in ("finished", "stopped", "failed"), a.timeout, "the run ends")
    info = s.info()
    check(info["status"] == "finished" and info["step"] == total, f"the run finished all {total} steps ({info['status']}, {info['step']})")
    # session.json says finished first, then the lock goes (a reader never sees a running session without one)
    end = time.time() + 10
    while os.path.exists(os.path.join(a.session, "lock")) and time.time() < end:
        time.sleep(0.1)
    check(not os.path.exists(os.path.join(a.session, "lock")), "the lock is gone")

    # 6. what every rank did
    for cid in ("drv-lambda", "drv-pause", "drv-step", "drv-lr", "drv-snap", "drv-resume"):
        acks = answers(cid)
        check(len(acks) == 1 and acks[0]["command"]["status"] == "applied", f"{cid} acknowledged exactly once, applied")
    steps = s.steps()
    check([m["step"] for m in steps] == list(range(1, total + 1)), "one step record per step")
    check(all(m["lambda"] == (lam0 if m["step"] <= t_lam else 2 * lam0) for m in steps),
          f"metrics: lambda {lam0:g} up to step {t_lam}, {2 * lam0:g} after")
    warm = math.ceil(0.06 * total)

    def f(k):  # HF's linear schedule with warm-up, at scheduler step k
        return k / max(1, warm) if k < warm else max(0.0, (total - k) / max(1, total - warm))

    def want(step):
        return (peak0 if step <= sb else 2 * peak0) * f(step - 1)
    bad = [(m["step"], m["lr"], want(m["step"])) for m in steps if abs(m["lr"] - want(m["step"])) > 1e-12]
    check(not bad, f"metrics: lr of every step = peak x schedule, peak doubled from step {sb + 1} on{'' if not bad else ' ' + str(bad[:3])}")
    ranks = s.ranks()
    per_rank = []
    for r, log in ranks.items():
        last = {}
        for rec in log:
            last[rec["step"]] = rec  # a step logged once per start; keep the last
        ok = sorted(last) == list(range(1, total + 1))
        ok = ok and all(last[k]["lambda"] == (lam0 if k <= t_lam else 2 * lam0) for k in last)
        ok = ok and all(abs(last[k]["lr"] - want(k)) <= 1e-12 for k in last)
        per_rank.append(ok)
    check(all(per_rank) and len(per_rank) == a.world,
          f"every rank ({a.world}) used lambda {2 * lam0:g} from step {t_lam + 1} and the doubled lr from step {sb + 1}: {per_rank}")
    print(json.dumps({"lambda_changed_at": t_lam, "paused_at": sp, "lr_changed_at": sb, "snapshot": snap}), flush=True)


if __name__ == "__main__":
    main()
