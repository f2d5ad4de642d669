"""SessionRecorder: session files, command parsing and acknowledgements (malformed lines
included), pause/resume across a thread, lr scaling that holds under a LambdaLR, snapshot round
trip, and write errors that do not end the run."""
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from qgoft_torch import SessionRecorder, append_command, apply_adapters, load_snapshot, parse_line  # noqa: E402
from qgoft_torch.files import read_safetensors  # noqa: E402
from test_adapters import Tiny, randomize  # noqa: E402


def events(d):
    with open(os.path.join(d, "events.jsonl")) as f:
        return [json.loads(l) for l in f]


def metrics(d):
    with open(os.path.join(d, "metrics.jsonl")) as f:
        return [json.loads(l) for l in f]


def acks(d):
    return [e for e in events(d) if "command" in e]


def raw(d, text):
    with open(os.path.join(d, "commands.jsonl"), "a") as f:
        f.write(text)


class Run:
    """A tiny model, AdamW and a linear warm-up/decay LambdaLR, one recorder."""

    def __init__(self, folder, method="qgoft", total=40, **kw):
        torch.manual_seed(0)
        self.model = Tiny()
        self.ad = apply_adapters(self.model, ["query", "output.dense"], method=method, lam=1e-3)
        self.opt = torch.optim.AdamW(self.ad.trainable_parameters(), lr=0.01)
        self.lin = lambda s: min(1.0, (s + 1) / 4) * max(0.0, (total - s) / total)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self.lin)
        self.rec = SessionRecorder(self.ad, folder, optimizer=self.opt, scheduler=self.sched, total_steps=total,
                                   stats_every=5, log=lambda m: None, **kw)
        self.step_no = 0
        self.lrs = []

    def step(self):
        x, y = torch.randn(8, 12), torch.randint(0, 3, (8,))
        loss = nn.functional.cross_entropy(self.model(x), y)
        pen = self.ad.penalty()
        (loss + self.ad.lam * pen).backward()
        lr = self.opt.param_groups[0]["lr"]
        self.lrs.append(lr)
        self.opt.step()
        self.opt.zero_grad()
        self.sched.step()
        self.step_no += 1
        return self.rec.step(self.step_no, task_loss=loss.item(), penalty=pen.item(), lr=lr, tokens=8)


class ParseTests(unittest.TestCase):
    def test_lines(self):
        self.assertEqual(parse_line('{"format_version":1,"id":"a","command":"pause"}', 1).problem, None)
        self.assertIn("not JSON", parse_line("{nope", 3).problem)
        self.assertIn("line 3", parse_line("{nope", 3).problem)
        self.assertIsNone(parse_line("{nope", 3).id)
        self.assertIn("unknown command 'dance'", parse_line('{"format_version":1,"id":"a","command":"dance"}', 1).problem)
        self.assertIn("newer", parse_line('{"format_version":2,"id":"a","command":"pause"}', 1).problem)
        self.assertEqual(parse_line('{"id":"a","command":"pause"}', 1).problem, None, "no format_version: version 1")
        self.assertIn("must be an integer", parse_line('{"format_version":"1","id":"a","command":"pause"}', 1).problem)
        self.assertIn("negative", parse_line('{"format_version":1,"id":"a","command":"set_lambda","value":-1}', 1).problem)
        self.assertIn("numeric", parse_line('{"format_version":1,"id":"a","command":"set_lr"}', 1).problem)
        self.assertIn("> 0", parse_line('{"format_version":1,"id":"a","command":"set_lr","value":0}', 1).problem)
        self.assertIn("no string id", parse_line('{"format_version":1,"command":"stop"}', 4).problem)
        self.assertEqual(parse_line('{"format_version":1,"id":"a","command":"set_lambda","value":0.5}', 1).value, 0.5)


class RecorderTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qgoft-torch-test-")
        self.dir = os.path.join(self.tmp, "run")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_session_files(self):
        r = Run(self.dir)
        for _ in range(5):
            r.step()
        lock = json.load(open(os.path.join(self.dir, "lock")))
        self.assertEqual(lock["pid"], os.getpid())
        info = json.load(open(os.path.join(self.dir, "session.json")))
        self.assertEqual(info["status"], "running")
        self.assertEqual(info["run"]["adaptedModules"], ["encoder.layer.0.query", "encoder.layer.0.output.dense",
                                                         "encoder.layer.1.query", "encoder.layer.1.output.dense"])
        r.rec.close()
        info = json.load(open(os.path.join(self.dir, "session.json")))
        self.assertEqual((info["status"], info["step"]), ("finished", 5))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "lock")))
        steps = [m for m in metrics(self.dir) if m["type"] == "step"]
        self.assertEqual([m["step"] for m in steps], [1, 2, 3, 4, 5])
        for m in steps:
            self.assertAlmostEqual(m["loss"], m["taskLoss"] + m["lambda"] * m["penalty"], places=9)
        stats = [m for m in metrics(self.dir) if m["type"] == "stats"]
        self.assertEqual(len(stats), 1)
        st = stats[0]["layers"][0]
        self.assertEqual((st["module"], st["layer"], st["target"]), ("encoder.layer.0.query", 0, "query"))
        self.assertEqual(len(st["stats"]["stageDrift"]), 4)
        self.assertGreater(st["stats"]["blockDriftMean"], 0)
        self.assertTrue(os.path.isdir(os.path.join(self.dir, "snapshots", "step-5")))
        with self.assertRaisesRegex(FileExistsError, "already holds a session"):
            Run(self.dir)

    def test_commands_are_acknowledged_once(self):
        r = Run(self.dir)
        r.step()
        append_command(self.dir, "set_lambda", 0.004, cid="l1")
        raw(self.dir, "this is not json\n")
        append_command(self.dir, "dance", cid="u1")
        append_command(self.dir, "set_lambda", -1, cid="neg")
        append_command(self.dir, "step", cid="s1")
        append_command(self.dir, "set_lr", 0.02, cid="lr1")
        raw(self.dir, '{"format_version": 2, "id": "v2", "command": "pause"}\n')
        append_command(self.dir, "set_lambda", 0.5, cid="l1")  # id reused
        raw(self.dir, '{"format_version": 1, "id": "torn", "command": "evaluate"}')  # no newline yet
        ctl = r.step()
        self.assertEqual(ctl.lam, 0.004)
        self.assertEqual(r.ad.lam, 0.004)
        a = acks(self.dir)
        self.assertEqual([(e["command"]["id"], e["command"]["status"]) for e in a],
                         [("l1", "applied"), (None, "refused"), ("u1", "refused"), ("neg", "refused"),
                          ("s1", "refused"), ("lr1", "applied"), ("v2", "refused"), ("l1", "refused")])
        self.assertEqual(a[0]["kind"], "lambdaChanged")
        self.assertEqual((a[0]["from"], a[0]["to"], a[0]["step"]), (1e-3, 0.004, 2))
        self.assertIn("line 2", a[1]["command"]["reason"])
        self.assertIn("unknown command 'dance'", a[2]["command"]["reason"])
        self.assertIn("running", a[4]["command"]["reason"])
        self.assertEqual(a[5]["kind"], "lrChanged")
        self.assertIn("newer", a[6]["command"]["reason"])
        self.assertIn("already used", a[7]["command"]["reason"])
        # the torn line is read once it is complete, and nothing is acknowledged twice
        raw(self.dir, "\n")
        ctl = r.step()
        self.assertTrue(ctl.evaluate)
        a = acks(self.dir)
        self.assertEqual(len(a), 9)
        self.assertEqual((a[8]["kind"], a[8]["command"]["id"]), ("evaluationRequested", "torn"))
        r.step()
        self.assertEqual(len(acks(self.dir)), 9)
        steps = [m for m in metrics(self.dir) if m["type"] == "step"]
        self.assertEqual([m["lambda"] for m in steps], [1e-3, 1e-3, 0.004, 0.004])
        r.rec.close()

    def test_lr_scaling_holds_under_a_lambda_schedule(self):
        r = Run(self.dir, total=30)
        for _ in range(6):
            r.step()
        append_command(self.dir, "set_lr", 0.02, cid="x")  # peak 0.01 -> 0.02
        for _ in range(10):
            r.step()
        # step k (1-based) used lr = peak * lin(k - 1); the change took effect at the boundary after step 7
        for k, lr in enumerate(r.lrs, start=1):
            peak = 0.01 if k <= 7 else 0.02
            self.assertAlmostEqual(lr, peak * r.lin(k - 1), places=12, msg=f"step {k}")
        self.assertEqual(r.sched.base_lrs, [0.02])
        self.assertAlmostEqual(r.sched.get_last_lr()[0], r.opt.param_groups[0]["lr"], places=15)
        steps = [m for m in metrics(self.dir) if m["type"] == "step"]
        self.assertAlmostEqual(steps[-1]["lr"], 0.02 * r.lin(15), places=12)
        r.rec.close()
        state = json.load(open(os.path.join(self.dir, "snapshots", "step-16", "trainer_state.json")))
        self.assertEqual(state["learning_rate"], 0.02)

    def test_pause_blocks_until_resume_and_step_runs_one(self):
        r = Run(self.dir)
        r.step()
        append_command(self.dir, "pause", cid="p")
        done = []

        def steer():
            time.sleep(0.6)
            append_command(self.dir, "step", cid="s")
            time.sleep(0.8)
            append_command(self.dir, "snapshot", cid="snap")
            append_command(self.dir, "resume", cid="r")
            done.append(True)
        t = threading.Thread(target=steer)
        t.start()
        r.step()  # boundary 2: pauses, then one step is allowed
        info = json.load(open(os.path.join(self.dir, "session.json")))
        self.assertEqual(info["status"], "paused")
        self.assertFalse(done)
        r.step()  # step 3 ran (the one step), paused again at boundary 3 until resume
        t.join()
        kinds = [(e["kind"], e["step"]) for e in acks(self.dir)]
        self.assertEqual(kinds, [("paused", 2), ("stepOnce", 2), ("snapshotSaved", 3), ("unpaused", 3)])
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "snapshots", "step-3", "optimizer.safetensors")))
        info = json.load(open(os.path.join(self.dir, "session.json")))
        self.assertEqual(info["status"], "running")
        append_command(self.dir, "stop", cid="st")
        self.assertTrue(r.step().stop)
        r.rec.close()
        info = json.load(open(os.path.join(self.dir, "session.json")))
        self.assertEqual(info["status"], "stopped")

    def test_goft_refuses_lambda(self):
        r = Run(self.dir, method="goft")
        append_command(self.dir, "set_lambda", 0.1, cid="g")
        r.step()
        a = acks(self.dir)
        self.assertEqual((a[0]["kind"], a[0]["command"]["reason"]), ("commandRefused", "lambda is not used by goft"))
        r.rec.close()

    def test_stale_lines_are_refused_at_start(self):
        os.makedirs(self.dir)
        raw(self.dir, '{"format_version": 1, "id": "old", "command": "stop"}\n')
        r = Run(self.dir)
        self.assertFalse(r.step().stop)
        a = acks(self.dir)
        self.assertEqual(a[0]["command"]["status"], "refused")
        self.assertIn("not running", a[0]["command"]["reason"])
        r.rec.close()

    def test_snapshot_round_trip(self):
        r = Run(self.dir)
        for lin in r.ad.layers.values():
            randomize(lin, 0.2)
        for _ in range(3):
            r.step()
        path = r.rec.snapshot()
        tensors, meta = read_safetensors(os.path.join(path, "adapter_model.safetensors"))
        self.assertEqual(meta["step"], "3")
        self.assertIn("base_model.model.encoder.layer.1.output.dense.givens_soft", tensors)
        self.assertIn("base_model.model.classifier.weight", tensors)
        moments, m2 = read_safetensors(os.path.join(path, "optimizer.safetensors"))
        self.assertEqual(m2["adam_steps"], "3")
        self.assertEqual(len(moments), 2 * len(tensors))
        torch.manual_seed(0)  # the same base weights; adapters and head come from the snapshot
        fresh = Tiny()
        with torch.no_grad():
            fresh.classifier.weight.zero_()
        ad2 = apply_adapters(fresh, ["query", "output.dense"], method="qgoft")
        load_snapshot(path, ad2)
        x = torch.randn(4, 12)
        self.assertTrue(torch.equal(fresh(x), r.model(x)))
        other = apply_adapters(Tiny(), ["query", "output.dense"], method="qgoft", layout="butterfly")
        with self.assertRaisesRegex(ValueError, "layout tree"):
            load_snapshot(path, other)
        r.rec.close()

    def test_write_errors_do_not_end_the_run(self):
        import qgoft_torch.session as session_module
        warnings = []
        r = Run(self.dir)
        r.rec.log = warnings.append
        r.step()
        real_write = os.write

        def full_disk(fd, data):
            raise OSError(28, "No space left on device")
        session_module.os.write = full_disk
        try:
            for _ in range(3):
                r.step()  # steps 2-4: nothing can be written, the run goes on
        finally:
            session_module.os.write = real_write
        self.assertTrue(any("No space left" in w for w in warnings))
        r.step()  # step 5: the queued lines are written first
        self.assertEqual([m["step"] for m in metrics(self.dir) if m["type"] == "step"], [1, 2, 3, 4, 5])
        shutil.rmtree(self.dir)  # the session folder vanishes under the run
        for _ in range(3):
            r.step()
        r.rec.close()  # does not raise either


    def test_a_process_that_dies_of_an_exception_leaves_a_stopped_session(self):
        import subprocess
        here = os.path.dirname(os.path.abspath(__file__))
        script = (f"import sys; sys.path.insert(0, {here!r}); sys.path.insert(0, {os.path.dirname(here)!r})\n"
                  "from test_session import Run\n"
                  f"r = Run({self.dir!r})\n"
                  "r.step(); r.step()\n"
                  "raise RuntimeError('boom')\n")
        p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("boom", p.stderr)
        info = json.load(open(os.path.join(self.dir, "session.json")))
        self.assertEqual((info["status"], info["step"]), ("stopped", 2))
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "snapshots", "step-2", "trainer_state.json")))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "lock")))


if __name__ == "__main__":
    unittest.main()
