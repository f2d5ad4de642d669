#!/usr/bin/env python3
"""What the workbench costs the trainer: the same short qGOFT run headless and with the workbench
open (under a tmux server of its own, 120x40). Needs a release build (`swift build -c release`),
the fetched assets (`qgoft fetch`) and tmux.

    python3 scripts/bench_workbench.py [--pairs 4] [--steps 60] [--side-by-side]

Three figures per pair:

- throughput: tokens of steps 6..N over their step time (from the session's metrics.jsonl), and
  the ratio workbench / headless, which is what issue 5 asks for. On this shared machine two
  identical runs differ by up to 15 %, so the ratio of one pair says little; the script prints
  the mean and median over the pairs, and alternates which run goes first.
- screen CPU: CPU time of the workbench's main thread (it renders; the trainer runs on its own
  threads) and of the tmux server, from /proc/PID/task/TID/schedstat, between the first step and
  the end, as a share of one core and of the run's CPU time.
- CPU wait: how long the trainer's threads were runnable but waiting for a CPU held by another
  thread (schedstat's run-queue time), headless against workbench. The screen can only slow the
  trainer by taking the CPU from it, so the difference bounds its cost, and it is not blurred
  by the machine's drift the way throughput is.

--side-by-side runs both of a pair at the same time with one thread each, pinned to CPU 0 and 1
(swapped every pair), so that drift in the machine's speed hits both alike.
"""
import argparse
import glob
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, ".build", "release", "qgoft")
POLL = 0.25  # seconds between samples of /proc and the session files


def schedstat(path):
    """(seconds on a CPU, seconds runnable but waiting for one) of a thread."""
    with open(path) as f:
        run, wait, _ = map(int, f.read().split())
    return run / 1e9, wait / 1e9


def session_file(sessions, name):
    found = glob.glob(os.path.join(sessions, "*", name))
    return found[0] if found else None


def session_says(sessions, name, text):
    """True when the session's file `name` exists and contains `text`."""
    f = session_file(sessions, name)
    return f is not None and text in open(f).read()


def throughput(sessions, skip=5):
    """Tokens per second of step time over the steps after the first `skip`."""
    f = session_file(sessions, "metrics.jsonl")
    steps = [r for r in map(json.loads, filter(str.strip, open(f))) if r.get("type") == "step"][skip:]
    return sum(r["tokens"] for r in steps) / sum(r["tokens"] / r["tokensPerSecond"] for r in steps)


class Run:
    """One training run, headless or with the workbench under its own tmux server (120x40),
    optionally with `threads` threads pinned to one CPU."""

    def __init__(self, kind, steps, work, threads=None, cpu=None):
        self.kind = kind
        self.sessions = os.path.join(work, f"{kind}-{time.time_ns()}")
        args = [BINARY, "train", "--max-steps", str(steps), "--eval-every", "100000",
                "--sessions-dir", self.sessions]
        if threads:
            args += ["--threads", str(threads)]
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        self.tmux_pid = None
        if kind == "headless":
            self.proc = subprocess.Popen(pin + args + ["--headless"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            self.pid = self.proc.pid
        else:
            # A server of our own (-L), started pinned like the run so that it inherits the CPU.
            self.tmux = ["tmux", "-L", f"qgoft-bench-{os.getpid()}-{time.time_ns()}"]
            subprocess.run(pin + self.tmux + ["new-session", "-d", "-x", "120", "-y", "40", shlex.join(args)],
                           check=True)
            self.pid = int(self._tmux("list-panes", "-F", "#{pane_pid}").split()[0])
            self.tmux_pid = int(self._tmux("display", "-p", "#{pid}").strip())
        self.started = self.finished = False
        self.first = self.last = None  # samples: {tid: (run, wait)}, tmux (run, wait), time

    def _tmux(self, *args):
        return subprocess.run(self.tmux + list(args), capture_output=True, text=True, check=True).stdout

    def alive(self):
        if self.kind == "headless":
            return self.proc.poll() is None
        return os.path.exists(f"/proc/{self.pid}")

    def _sample(self, into=None):
        threads = dict(into[0]) if into else {}
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except FileNotFoundError:
            tids = []  # the process has just exited: keep the last figures
        for tid in tids:
            try:
                threads[int(tid)] = schedstat(f"/proc/{self.pid}/task/{tid}/schedstat")
            except (FileNotFoundError, ProcessLookupError):
                pass  # the thread ended between listing and reading
        tmux = schedstat(f"/proc/{self.tmux_pid}/schedstat") if self.tmux_pid else (0.0, 0.0)
        return threads, tmux, time.time()

    def poll(self):
        """Samples at the first step, then at every poll (threads that end keep their last
        figures) until the session says finished. True once finished."""
        if not self.finished and not self.alive() and not session_says(self.sessions, "session.json", '"finished"'):
            sys.exit(f"bench_workbench: the {self.kind} run ended before finishing; its session: {self.sessions}")
        if not self.started:
            if not session_says(self.sessions, "metrics.jsonl", '"type":"step"'):
                return False
            self.started = True
            self.first = self._sample()
            self.last = self.first
            return False
        if not self.finished:
            self.last = self._sample(into=self.last)
            self.finished = session_says(self.sessions, "session.json", '"finished"')
        return self.finished

    def close(self):
        if self.kind == "headless":
            self.proc.wait()
        else:
            subprocess.run(self.tmux + ["send-keys", "q"])
            time.sleep(1)
            subprocess.run(self.tmux + ["kill-server"], stderr=subprocess.DEVNULL)

    def result(self):
        (t0, tmux0, w0), (t1, tmux1, w1) = self.first, self.last
        delta = {tid: (t1[tid][0] - t0.get(tid, (0, 0))[0], t1[tid][1] - t0.get(tid, (0, 0))[1]) for tid in t1}
        main = delta.get(self.pid, (0.0, 0.0))
        trainer = [d for tid, d in delta.items() if tid != self.pid]
        return {
            "tps": throughput(self.sessions),
            "wall": w1 - w0,
            "cpu": sum(d[0] for d in delta.values()),
            "main": main[0],
            "tmux": tmux1[0] - tmux0[0],
            "trainer_wait": sum(d[1] for d in trainer),
        }


def measure(runs, timeout=3600):
    deadline = time.time() + timeout
    while not all([r.poll() for r in runs]):
        if time.time() > deadline:
            sys.exit("bench_workbench: timed out waiting for the runs to finish")
        time.sleep(POLL)
    for r in runs:
        r.close()
    return {r.kind: r.result() for r in runs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--side-by-side", action="store_true",
                    help="run each pair at the same time, one thread each, pinned to CPU 0 and 1 "
                         "(swapped every pair)")
    a = ap.parse_args()
    if a.pairs < 1 or a.steps < 10:
        sys.exit("bench_workbench: --pairs must be at least 1 and --steps at least 10")
    if not os.access(BINARY, os.X_OK):
        sys.exit(f"bench_workbench: {BINARY} is missing; run `swift build -c release` first")
    for tool in ["tmux"] + (["taskset"] if a.side_by_side else []):
        if shutil.which(tool) is None:
            sys.exit(f"bench_workbench: {tool} is not installed")
    if a.side_by_side and (os.cpu_count() or 1) < 2:
        sys.exit("bench_workbench: --side-by-side needs two CPUs")
    work = tempfile.mkdtemp(prefix="qgoft-bench-wb-")
    ratios, screens, extra_waits = [], [], []
    try:
        for i in range(a.pairs):
            if a.side_by_side:
                cpus = (0, 1) if i % 2 == 0 else (1, 0)
                result = measure([Run("headless", a.steps, work, threads=1, cpu=cpus[0]),
                                  Run("workbench", a.steps, work, threads=1, cpu=cpus[1])])
                where = f" (headless on CPU {cpus[0]})"
            else:
                # Alternate which goes first so a drift of the machine's speed favours neither.
                result = {}
                for kind in (["headless", "workbench"] if i % 2 == 0 else ["workbench", "headless"]):
                    result.update(measure([Run(kind, a.steps, work)]))
                where = ""
            h, w = result["headless"], result["workbench"]
            ratio = w["tps"] / h["tps"]
            screen = (w["main"] + w["tmux"]) / w["wall"]
            # Extra waiting of the trainer's threads with the screen open, per second of run.
            extra = w["trainer_wait"] / w["wall"] - h["trainer_wait"] / h["wall"]
            ratios.append(ratio)
            screens.append(screen)
            extra_waits.append(extra)
            print(f"pair {i + 1}{where}: throughput headless {h['tps']:.0f}, workbench {w['tps']:.0f} tok/s, "
                  f"ratio {ratio:.3f} | screen CPU {w['main']:.2f} s + tmux {w['tmux']:.2f} s in {w['wall']:.0f} s "
                  f"= {screen * 100:.2f} % of a core ({w['cpu']:.1f} CPU s in all) | trainer threads waited "
                  f"for a CPU {h['trainer_wait']:.2f} s of {h['wall']:.0f} s headless, {w['trainer_wait']:.2f} s "
                  f"of {w['wall']:.0f} s with the workbench", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"throughput workbench / headless: mean {statistics.mean(ratios):.3f}, median "
          f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}) over {len(ratios)} pairs")
    print(f"screen (render thread + tmux): {statistics.mean(screens) * 100:.2f} % of one core; trainer's extra "
          f"wait for a CPU with the workbench: {statistics.mean(extra_waits) * 100:+.2f} % of the run time")


if __name__ == "__main__":
    main()
