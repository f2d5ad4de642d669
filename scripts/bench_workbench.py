#!/usr/bin/env python3
"""What the workbench costs the trainer: the same short qGOFT run headless and with the workbench
open (under tmux, 120x40), in alternating pairs because this machine's speed drifts from minute to
minute. Needs a release build (`swift build -c release`), the fetched assets and tmux.

For every run it reports the training throughput (tokens of steps 6..N over their step time, from
the session's metrics.jsonl) and, between the first step and the end, the CPU time of the
process's main thread (the workbench's render loop, or the headless progress printer) and of the
tmux server. The ratio of throughputs is what issue 5 asks for; the CPU share says how much of
the machine the screen took, which the pairs' noise cannot hide.

    python3 scripts/bench_workbench.py [--pairs 4] [--steps 60]
"""
import argparse
import glob
import shlex
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, ".build", "release", "qgoft")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, tid=None):
    """utime + stime of a process (or one of its threads), in seconds."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def session_file(sessions, name):
    found = glob.glob(os.path.join(sessions, "*", name))
    return found[0] if found else None


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    sys.exit(f"bench_workbench: timed out waiting for {what}")


def has_step(sessions):
    f = session_file(sessions, "metrics.jsonl")
    return f is not None and '"type":"step"' in open(f).read()


def finished(sessions):
    f = session_file(sessions, "session.json")
    return f is not None and '"finished"' in open(f).read()


def throughput(sessions, skip=5):
    f = session_file(sessions, "metrics.jsonl")
    steps = [r for r in map(json.loads, filter(str.strip, open(f))) if r.get("type") == "step"][skip:]
    tokens = sum(r["tokens"] for r in steps)
    seconds = sum(r["tokens"] / r["tokensPerSecond"] for r in steps)
    return tokens / seconds, len(steps)


def run(kind, steps, work):
    """One run; returns (tokens/s, main-thread CPU s, tmux CPU s, process CPU s, wall s)."""
    sessions = os.path.join(work, f"{kind}-{time.time_ns()}")
    args = [BINARY, "train", "--max-steps", str(steps), "--eval-every", "100000", "--sessions-dir", sessions]
    tmux_pid = None
    if kind == "headless":
        proc = subprocess.Popen(args + ["--headless"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = proc.pid
    else:
        name = f"qgoft-bench-{os.getpid()}"
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", shlex.join(args)], check=True)
        pid = int(subprocess.run(["tmux", "list-panes", "-t", name, "-F", "#{pane_pid}"],
                                 capture_output=True, text=True, check=True).stdout.split()[0])
        tmux_pid = int(subprocess.run(["tmux", "display", "-p", "-t", name, "#{pid}"],
                                      capture_output=True, text=True, check=True).stdout.strip())
    wait_for(lambda: has_step(sessions), 300, "the first step")
    main0, proc0 = cpu_seconds(pid, pid), cpu_seconds(pid)
    tmux0 = cpu_seconds(tmux_pid) if tmux_pid else 0
    t0 = time.time()
    wait_for(lambda: finished(sessions), 3600, "the end of the run")
    main1, proc1 = cpu_seconds(pid, pid), cpu_seconds(pid)
    tmux1 = cpu_seconds(tmux_pid) if tmux_pid else 0
    wall = time.time() - t0
    if kind == "headless":
        proc.wait()
    else:
        subprocess.run(["tmux", "send-keys", "-t", name, "q"])
        time.sleep(1)
        subprocess.run(["tmux", "kill-session", "-t", name], stderr=subprocess.DEVNULL)
    tps, _ = throughput(sessions)
    return tps, main1 - main0, tmux1 - tmux0, proc1 - proc0, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=60)
    a = ap.parse_args()
    if not os.access(BINARY, os.X_OK):
        sys.exit(f"bench_workbench: {BINARY} is missing; run `swift build -c release` first")
    if shutil.which("tmux") is None:
        sys.exit("bench_workbench: tmux is not installed")
    work = tempfile.mkdtemp(prefix="qgoft-bench-wb-")
    ratios, shares = [], []
    try:
        for i in range(a.pairs):
            # Alternate which goes first so a drift of the machine's speed does not favour one.
            order = ["headless", "workbench"] if i % 2 == 0 else ["workbench", "headless"]
            result = {kind: run(kind, a.steps, work) for kind in order}
            h, w = result["headless"], result["workbench"]
            ratio = w[0] / h[0]
            share = (w[1] + w[2]) / w[3]
            ratios.append(ratio)
            shares.append(share)
            print(f"pair {i + 1}: headless {h[0]:7.0f} tok/s | workbench {w[0]:7.0f} tok/s, ratio {ratio:.3f} | "
                  f"workbench main thread {w[1]:.2f} s + tmux {w[2]:.2f} s of {w[3]:.1f} s process CPU "
                  f"({share * 100:.2f} %) over {w[4]:.0f} s; headless main thread {h[1]:.2f} s of {h[3]:.1f} s over {h[4]:.0f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"throughput ratio: mean {statistics.mean(ratios):.3f}, median {statistics.median(ratios):.3f}, "
          f"min {min(ratios):.3f}, max {max(ratios):.3f} over {len(ratios)} pairs")
    print(f"screen CPU (main thread + tmux) / trainer process CPU: mean {statistics.mean(shares) * 100:.2f} %")


if __name__ == "__main__":
    main()
