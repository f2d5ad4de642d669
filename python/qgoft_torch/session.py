"""SessionRecorder: a qgoft session written by a PyTorch training loop (docs/sessions.md), steered
through commands.jsonl.

Under torch.distributed only rank 0 reads commands and writes the session; at every step
boundary rank 0's decision (paused, one step, stop, evaluate, lambda, peak learning rate) is
broadcast to every rank, so all ranks pause, change lambda and lr, and snapshot at the same step.
While paused the ranks keep exchanging that decision about 4 times a second (no collective
waits long enough to time out).

Errors of the recorder (a full disk, a vanished folder, a malformed command) never end the
training: they are reported on stderr and as `warning` events, lines that could not be written
stay queued and are written by the next successful write.
"""
import fcntl
import hashlib
import json
import math
import os
import platform
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from .adapters import QGOFTAdapters, snapshot_module_name
from .commands import Command, CommandReader
from .files import FORMAT_VERSION, dumps_line, write_json
from .snapshot import iso_now, layers_of, targets_of, write_snapshot
from .statistics import angle_pairs, stats_record

HEARTBEAT_SECONDS = 5.0
POLL_SECONDS = 0.25
DEFAULT_TARGETS = ["attention.self.query", "attention.self.key", "attention.self.value",
                   "attention.output.dense", "intermediate.dense", "output.dense"]


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dist():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed
    return None


@dataclass
class Control:
    """What the loop should do after a step boundary."""
    stop: bool = False
    evaluate: bool = False
    lam: float = 0.0
    lr: float = 0.0
    snapshot: Optional[str] = None


@dataclass
class _Decision:
    paused: bool = False
    step_once: bool = False
    stop: bool = False
    evaluate: bool = False
    lam: float = 0.0
    lr: float = 0.0

    def tensor(self, device) -> torch.Tensor:
        return torch.tensor([float(self.paused), float(self.step_once), float(self.stop), float(self.evaluate),
                             self.lam, self.lr], dtype=torch.float64, device=device)

    @staticmethod
    def of(t: torch.Tensor) -> "_Decision":
        v = t.tolist()
        return _Decision(v[0] > 0.5, v[1] > 0.5, v[2] > 0.5, v[3] > 0.5, v[4], v[5])


class SessionRecorder:
    """Writes a qgoft session for a PyTorch run and applies commands.jsonl at step boundaries.

    Plain loop:
        rec = SessionRecorder(adapters, session_dir="sessions/my-run", optimizer=opt, scheduler=sched,
                              total_steps=N, data=..., config={...})
        for step in range(1, N + 1):
            ...forward, backward, opt.step(), sched.step()...
            ctl = rec.step(step, task_loss=..., lr=..., tokens=...)
            if ctl.evaluate: rec.log_eval(step, ...)
            if ctl.stop: break
        rec.close()
    """

    def __init__(self, adapters: QGOFTAdapters, session_dir: Optional[str] = None, *,
                 sessions_dir: Optional[str] = None, name: Optional[str] = None,
                 optimizer=None, scheduler=None, total_steps: int = 0, steps_per_epoch: int = 0,
                 model: str = "minilm-l6", model_path: Optional[str] = None, model_sha256: Optional[str] = None,
                 data: Optional[dict] = None, labels: Optional[List[str]] = None,
                 config: Optional[dict] = None, stats_every: int = 50, snapshot_every: Optional[int] = None,
                 seed: int = 0, keep_autosaves: int = 2, poll_seconds: float = POLL_SECONDS,
                 evaluate: Optional[Callable[[int], Optional[dict]]] = None, log=None):
        self.adapters = adapters
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.total_steps = int(total_steps)
        self.steps_per_epoch = int(steps_per_epoch)
        self.stats_every = int(stats_every)
        self.snapshot_every = snapshot_every
        self.keep_autosaves = keep_autosaves
        self.poll_seconds = poll_seconds
        self.seed = int(seed)
        self.evaluate_fn = evaluate
        self.log = log or (lambda msg: print(f"qgoft-torch: {msg}", file=sys.stderr, flush=True))
        d = _dist()
        self.rank = d.get_rank() if d else 0
        self.world = d.get_world_size() if d else 1
        self.is_writer = self.rank == 0
        self.lam = adapters.lam
        self.peak_lr = self._current_peak_lr()
        self.head_lr_ratio = self._head_ratio()
        self.step_no = 0
        self.epoch = 0
        self.position = 0
        self.best_val_accuracy: Optional[float] = None
        self.lambda_history: List[dict] = []
        self.last_stats: Optional[dict] = None
        self.status = "running"
        self.paused = False
        self.stop_requested = False
        self.closed = False
        self.started_time = time.time()
        self.last_snapshot: Optional[str] = None
        self._pending: Dict[str, List[str]] = {"metrics.jsonl": [], "events.jsonl": []}
        self._fds: Dict[str, int] = {}
        self._warned: set = set()
        self._autosaves: List[int] = []
        self._acked: set = set()
        self._lock_fd = None
        self._hb_stop = threading.Event()
        self._hb_thread = None
        self._io_lock = threading.RLock()
        self.labels = labels or (data or {}).get("labels") or self._default_labels()
        out_widths = [(snapshot_module_name(n), lin.out_features) for n, lin in adapters.layers.items()]
        self.pairs = angle_pairs(out_widths, self.seed)
        self.session_dir = None
        self.id = None
        if self.is_writer:
            self.session_dir = self._make_folder(session_dir, sessions_dir, name)
            self.id = os.path.basename(os.path.normpath(self.session_dir))
            self.commands = CommandReader(os.path.join(self.session_dir, "commands.jsonl"))
            self._lock_folder()
            self.info = self._session_info(model, model_path, model_sha256, data, config)
            self._write_session()
            self._write_lock()
            self._hb_thread = threading.Thread(target=self._heartbeat, name="qgoft-heartbeat", daemon=True)
            self._hb_thread.start()
            self.event("started", f"started {self.adapters.method} ({self.adapters.layout}) from qgoft-torch, "
                                  f"rank 0 of {self.world}")
            self._stale_commands()
            import atexit
            atexit.register(self._at_exit)
        self._sync_id()

    # -- setup ------------------------------------------------------------------------------
    def _default_labels(self) -> List[str]:
        h = self.adapters.head
        return [str(i) for i in range(h.weight.shape[0])] if h is not None else []

    def _make_folder(self, session_dir, sessions_dir, name) -> str:
        if session_dir:
            session_dir = os.path.abspath(os.path.expanduser(session_dir))
            if os.path.exists(os.path.join(session_dir, "session.json")):
                raise FileExistsError(f"{session_dir}: already holds a session (session.json); choose a new --session-dir")
            if os.path.isdir(session_dir) and set(os.listdir(session_dir)) - {"commands.jsonl"}:
                raise FileExistsError(f"{session_dir}: exists and is not empty; choose a new --session-dir")
            os.makedirs(session_dir, exist_ok=True)
            return session_dir
        root = os.path.abspath(os.path.expanduser(sessions_dir or os.environ.get("QGOFT_SESSIONS") or "sessions"))
        os.makedirs(root, exist_ok=True)
        base = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + (name or f"{self.adapters.method}-torch")
        for n in range(1, 1000):
            path = os.path.join(root, base if n == 1 else f"{base}-{n}")
            try:
                os.mkdir(path)
                return path
            except FileExistsError:
                continue
        raise FileExistsError(f"{root}: no free session name for {base}")

    def _lock_folder(self):
        fd = os.open(self.session_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RuntimeError(f"{self.session_dir}: another process writes this session")
        self._lock_fd = fd

    def _sync_id(self):
        """Every rank learns nothing but needs nothing; a barrier keeps ranks from racing ahead of setup."""
        d = _dist()
        if d and self.world > 1:
            t = torch.zeros(1, dtype=torch.float64, device=self._device())
            d.broadcast(t, 0)

    def _device(self):
        d = _dist()
        if d and d.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _session_info(self, model, model_path, model_sha256, data, config) -> dict:
        a = self.adapters
        if model_path is None:  # a qgoft asset name (~/.cache/qgoft/<name>) or a folder
            asset = os.path.join(os.path.expanduser("~/.cache/qgoft"), model)
            model_path = asset if os.path.isdir(asset) else (model if os.path.isdir(os.path.expanduser(model)) else None)
        path = os.path.abspath(os.path.expanduser(model_path)) if model_path else model
        if model_sha256 is None and os.path.isfile(os.path.join(path, "model.safetensors")):
            model_sha256 = sha256_file(os.path.join(path, "model.safetensors"))
        data = dict(data or {})
        data.setdefault("name", "unknown")
        data.setdefault("source", "")
        data.setdefault("sha256", "")
        data["labels"] = list(self.labels)
        data.setdefault("train_rows", 0)
        data.setdefault("validation_rows", 0)
        data.setdefault("split", "chosen by the PyTorch script")
        layers = layers_of(a)
        targets = targets_of(a)
        c = {"model": model, "data": data.get("name") if data.get("name") in ("rotten-tomatoes", "imdb") else data["source"] or data["name"],
             "method": a.method, "layout": a.layout, "goftScaling": bool(a.scaling) if a.method == "goft" else True,
             "targets": targets, "lambda": a.initial_lam, "learningRate": self.peak_lr or 0.0,
             "epochs": 1, "batchSize": 1, "maxLength": 64, "warmupFraction": 0.0, "headWeightDecay": 0.0,
             "seed": self.seed, "threads": torch.get_num_threads(), "evalEvery": 0, "statsEvery": self.stats_every,
             "validationFraction": 0.1}
        n_layers = None
        if layers and all(n.find("encoder.layer.") >= 0 for n in a.layers):
            c["layers"] = sorted(layers)
        if self.total_steps:
            c["maxSteps"] = self.total_steps
        if self.head_lr_ratio not in (None, 1.0) and self.peak_lr:
            c["headLearningRate"] = self.peak_lr * self.head_lr_ratio
        c.update(config or {})
        modules = [snapshot_module_name(n) for n in a.layers]
        stage_count = max((lin.plan.stage_count for lin in a.layers.values()), default=0)
        now = iso_now()
        try:
            cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
        except OSError:
            cpu = platform.processor() or "unknown"
        return {
            "format_version": FORMAT_VERSION, "id": self.id, "status": "running", "created": now, "updated": now,
            "finished": None, "step": 0, "configuration": c, "options": ({"snapshot_every": self.snapshot_every} if self.snapshot_every else {}),
            "model": {"name": model, "path": path, "sha256": model_sha256},
            "data": data,
            "run": {"sessionID": self.id, "model": model, "data": data["name"], "method": a.method, "layout": a.layout,
                    "trainableParameters": a.parameter_count(), "totalSteps": self.total_steps,
                    "stepsPerEpoch": self.steps_per_epoch or self.total_steps, "batchSize": c["batchSize"],
                    "maxLength": c["maxLength"], "threads": c["threads"], "adaptedModules": modules, "stageCount": stage_count},
            "machine": {"hostname": socket.gethostname(), "cpu_model": cpu, "cores": os.cpu_count() or 1,
                        "blas_core": "torch " + torch.__version__, "os": platform.platform()},
            "build": {"qgoft_version": "qgoft-torch 0.1.0", "git_commit": None,
                      "swift_version": "none (PyTorch " + torch.__version__ + ")", "configuration": "python"},
            "resumes": [], "working_directory": os.getcwd(),
            "writer": {"program": "qgoft-torch", "torch": torch.__version__, "world_size": self.world},
        }

    def update_configuration(self, **values):
        """Sets keys of session.json's `configuration` (and the matching `run` fields) once the
        run's settings are known (the HF callback does it from TrainingArguments)."""
        if not self.is_writer:
            return
        self.info["configuration"].update(values)
        c = self.info["configuration"]
        r = self.info["run"]
        r["batchSize"], r["maxLength"], r["threads"] = c["batchSize"], c["maxLength"], c["threads"]
        self._write_session()

    # -- files ------------------------------------------------------------------------------
    def _warn(self, what: str, err: Exception):
        msg = f"{what}: {err}"
        if msg not in self._warned:
            self._warned.add(msg)
            self.log(f"warning: {msg} (training goes on; the lines are kept and written later)")

    def _append(self, file: str, line: str):
        with self._io_lock:
            self._pending[file].append(line)
            self._flush(file)

    def _flush(self, file: str):
        q = self._pending[file]
        if not q:
            return
        path = os.path.join(self.session_dir, file)
        try:
            fd = self._fds.get(file)
            if fd is None:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._fds[file] = fd
            while q:
                data = q[0].encode()
                n = os.write(fd, data)
                if n != len(data):
                    raise OSError(f"short write ({n} of {len(data)} bytes)")
                q.pop(0)
        except OSError as e:
            fd = self._fds.pop(file, None)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._warn(path, e)

    def _fsync_logs(self):
        for f, fd in list(self._fds.items()):
            try:
                os.fsync(fd)
            except OSError as e:
                self._warn(os.path.join(self.session_dir, f), e)

    def _write_session(self):
        self.info["updated"] = iso_now()
        try:
            write_json(os.path.join(self.session_dir, "session.json"), self.info)
        except OSError as e:
            self._warn(os.path.join(self.session_dir, "session.json"), e)

    def _write_lock(self):
        path = os.path.join(self.session_dir, "lock")
        try:
            write_json(path, {"format_version": FORMAT_VERSION, "pid": os.getpid(), "hostname": socket.gethostname(),
                              "started": self.info["created"], "heartbeat": time.time()}, sync=False)
        except OSError as e:
            self._warn(path, e)

    def _heartbeat(self):
        while not self._hb_stop.wait(HEARTBEAT_SECONDS):
            with self._io_lock:
                self._write_lock()
                for f in self._pending:
                    self._flush(f)

    def event(self, kind: str, message: str, step: Optional[int] = None, command: Optional[dict] = None, **extra):
        """Appends one event (rank 0 only)."""
        if not self.is_writer:
            return
        e = {"step": self.step_no if step is None else step, "time": time.time(), "kind": kind, "message": message}
        for k, v in extra.items():
            if v is not None:
                e[k] = v
        if command is not None:
            e["command"] = command
        self._append("events.jsonl", dumps_line(e))

    def metric(self, record: dict):
        if self.is_writer:
            self._append("metrics.jsonl", dumps_line(record))

    def _set_status(self, status: str):
        self.status = status
        self.info["status"] = status
        self.info["step"] = self.step_no
        if status in ("finished", "stopped", "failed"):
            self.info["finished"] = iso_now()
        self._write_session()

    # -- learning rate ------------------------------------------------------------------------
    def _opt(self):
        o = self.optimizer
        while o is not None and not isinstance(o, torch.optim.Optimizer) and hasattr(o, "optimizer"):
            o = o.optimizer
        return o

    def _sched(self):
        s = self.scheduler
        while s is not None and not hasattr(s, "base_lrs") and hasattr(s, "scheduler"):
            s = s.scheduler
        return s

    def _current_peak_lr(self) -> float:
        s, o = self._sched(), self._opt()
        if s is not None and getattr(s, "base_lrs", None):
            return float(s.base_lrs[0])
        if o is not None and o.param_groups:
            g = o.param_groups[0]
            return float(g.get("initial_lr", g["lr"]))
        return 0.0

    def _head_ratio(self) -> Optional[float]:
        s, o = self._sched(), self._opt()
        head = self.adapters.head
        if o is None or head is None or not self.peak_lr:
            return None
        hp = {id(p) for p in head.parameters()}
        for k, g in enumerate(o.param_groups):
            if any(id(p) in hp for p in g["params"]):
                base = s.base_lrs[k] if s is not None and getattr(s, "base_lrs", None) else g.get("initial_lr", g["lr"])
                return float(base) / self.peak_lr
        return None

    def attach(self, optimizer=None, scheduler=None, total_steps: Optional[int] = None, steps_per_epoch: Optional[int] = None):
        """Gives the recorder the optimizer and scheduler once they exist (the HF callback)."""
        if optimizer is not None:
            self.optimizer = optimizer
        if scheduler is not None:
            self.scheduler = scheduler
        self.peak_lr = self._current_peak_lr()
        self.head_lr_ratio = self._head_ratio()
        if total_steps:
            self.total_steps = int(total_steps)
        if steps_per_epoch:
            self.steps_per_epoch = int(steps_per_epoch)
        if self.is_writer:
            self.info["configuration"]["learningRate"] = self.peak_lr
            if self.head_lr_ratio not in (None, 1.0):
                self.info["configuration"]["headLearningRate"] = self.peak_lr * self.head_lr_ratio
            if self.total_steps:
                self.info["configuration"]["maxSteps"] = self.total_steps
                self.info["run"]["totalSteps"] = self.total_steps
                self.info["run"]["stepsPerEpoch"] = self.steps_per_epoch or self.total_steps
            self._write_session()

    def scale_learning_rate(self, factor: float):
        """Multiplies the peak rate by `factor` and keeps the schedule's shape: every param group's
        current lr (and `initial_lr`), and the scheduler's base_lrs (LambdaLR and the HF schedulers
        recompute lr from base_lrs each step) and last_lr."""
        o, s = self._opt(), self._sched()
        if o is not None:
            for g in o.param_groups:
                g["lr"] = g["lr"] * factor
                if "initial_lr" in g:
                    g["initial_lr"] = g["initial_lr"] * factor
        if s is not None:
            if getattr(s, "base_lrs", None) is not None:
                s.base_lrs = [b * factor for b in s.base_lrs]
            if getattr(s, "_last_lr", None) is not None:
                s._last_lr = [b * factor for b in s._last_lr]
        self.peak_lr *= factor

    # -- records ----------------------------------------------------------------------------
    def record_step(self, step: int, *, task_loss: Optional[float] = None, penalty: Optional[float] = None,
                    lr: Optional[float] = None, grad_norm: Optional[float] = None, tokens: Optional[int] = None,
                    epoch: Optional[float] = None, step_seconds: Optional[float] = None, skipped: bool = False):
        """The `step` record of metrics.jsonl (on every rank: the loss, penalty and tokens are
        summed over ranks, so every rank must call it)."""
        a = self.adapters
        tl = a.last_task_loss if task_loss is None else task_loss
        pen = a.last_penalty if penalty is None else penalty
        tok = a.last_tokens if tokens is None else tokens
        tl = float("nan") if tl is None else float(tl)
        pen = 0.0 if pen is None else float(pen)
        d = _dist()
        if d and self.world > 1:
            t = torch.tensor([tl, pen, float(tok or 0)], dtype=torch.float64, device=self._device())
            d.all_reduce(t)
            tl, pen, tok = t[0].item() / self.world, t[1].item() / self.world, int(t[2].item())
        self.step_no = step
        if not self.is_writer:
            return
        if lr is None:
            o = self._opt()
            lr = o.param_groups[0]["lr"] if o is not None else 0.0
        spe = self.steps_per_epoch or self.total_steps or 1
        ep = epoch if epoch is not None else step / spe
        secs = step_seconds if step_seconds and step_seconds > 0 else None
        self.metric({"type": "step", "step": step, "epoch": float(ep), "loss": tl + self.lam * pen, "taskLoss": tl,
                     "penalty": pen, "lambda": self.lam, "lr": float(lr),
                     "gradNorm": float(grad_norm) if grad_norm is not None else 0.0,
                     "tokensPerSecond": (tok / secs) if secs else 0.0, "tokens": int(tok or 0),
                     "elapsed": time.time() - self.started_time, "skipped": bool(skipped)})

    def record_stats(self, step: int):
        if not self.is_writer:
            return
        try:
            rec = stats_record(self.adapters, step, self.pairs)
        except Exception as e:  # statistics must never end a run
            self._warn("statistics", e)
            return
        self.last_stats = rec
        self.metric(rec)

    def log_eval(self, step: int, loss: float, accuracy: float, samples: int = 0, seconds: float = 0.0):
        if not self.is_writer:
            return
        self.metric({"type": "eval", "step": step, "valLoss": float(loss), "valAccuracy": float(accuracy),
                     "samples": int(samples), "seconds": float(seconds)})
        if accuracy == accuracy and (self.best_val_accuracy is None or accuracy > self.best_val_accuracy):
            self.best_val_accuracy = float(accuracy)
        self.event("evaluated", f"validation accuracy {accuracy:.4f}, loss {loss:.4f}", step=step)

    def snapshot(self, step: Optional[int] = None, kind: str = "named") -> Optional[str]:
        """Writes snapshots/step-N (rank 0; the others return None). Errors become warnings."""
        if not self.is_writer:
            return None
        step = self.step_no if step is None else step
        with self._io_lock:
            for f in self._pending:
                self._flush(f)
            self._fsync_logs()
        try:
            path = write_snapshot(
                os.path.join(self.session_dir, "snapshots"), step, self.adapters, session_id=self.id,
                optimizer=self.optimizer, epoch=self.epoch, position=self.position, learning_rate=self.peak_lr,
                head_learning_rate=self.peak_lr * (self.head_lr_ratio or 1.0), best_val_accuracy=self.best_val_accuracy,
                seed=self.seed, lambda_history=self.lambda_history, statistics=self.last_stats,
                base_model=dict(self.info["model"]), labels=self.labels, kind=kind)
        except Exception as e:
            self._warn(f"snapshot of step {step}", e)
            self.event("warning", f"snapshot of step {step} could not be written: {e}", step=step)
            return None
        self.last_snapshot = path
        if kind == "autosave":
            self._autosaves = [s for s in self._autosaves if s != step] + [step]
            while len(self._autosaves) > self.keep_autosaves:
                old = self._autosaves.pop(0)
                self._prune(old)
        return path

    def _prune(self, step: int):
        snaps = os.path.join(self.session_dir, "snapshots")
        src = os.path.join(snaps, f"step-{step}")
        try:
            with open(os.path.join(src, "qgoft_snapshot.json")) as f:
                if json.load(f).get("kind") != "autosave":
                    return
            aside = os.path.join(snaps, f".step-{step}.pruned-{os.getpid()}")
            os.rename(src, aside)
            import shutil
            shutil.rmtree(aside, ignore_errors=True)
        except (OSError, ValueError) as e:
            self._warn(src, e)

    # -- commands ---------------------------------------------------------------------------
    def _ack(self, c: Command, status: str, reason: Optional[str] = None) -> dict:
        if c.id is not None:
            self._acked.add(c.id)
        ack = {"id": c.id, "name": c.name, "status": status}
        if reason is not None:
            ack["reason"] = reason
        return ack

    def _who(self, c: Command) -> str:
        return f" (from {c.sender})" if c.sender else ""

    def _refuse(self, c: Command, reason: str):
        self.event("commandRefused", f"{c.name or 'command'} refused: {reason}{self._who(c)}", command=self._ack(c, "refused", reason))

    def _stale_commands(self):
        """Lines already in commands.jsonl when the run starts: those without an acknowledgement
        are refused (a stale stop never ends a new run)."""
        acked = set()
        try:
            with open(os.path.join(self.session_dir, "events.jsonl")) as f:
                for line in f:
                    try:
                        cmd = json.loads(line).get("command")
                        if isinstance(cmd, dict) and isinstance(cmd.get("id"), str):
                            acked.add(cmd["id"])
                    except ValueError:
                        pass
        except OSError:
            pass
        self._acked |= acked
        for c in self.commands.read_new():
            if c.id is not None and c.id in self._acked:
                continue
            self._refuse(c, c.problem or "written while the run was not running")

    def _handle(self, c: Command, dec: _Decision, step: int):
        if c.problem:
            return self._refuse(c, c.problem)
        if c.id in self._acked:
            return self._refuse(c, f"id '{c.id}' was already used in this session")
        who = self._who(c)
        n = c.name
        if n == "pause":
            if dec.paused:
                self.event("commandApplied", f"already paused{who}", command=self._ack(c, "applied"))
            else:
                dec.paused = True
                self.event("paused", f"paused at step {step}{who}", command=self._ack(c, "applied"))
        elif n == "resume":
            if dec.paused:
                dec.paused = False
                self.event("unpaused", f"resumed at step {step}{who}", command=self._ack(c, "applied"))
            else:
                self.event("commandApplied", f"not paused: nothing to resume{who}", command=self._ack(c, "applied"))
        elif n == "step":
            if not dec.paused:
                self._refuse(c, "step is for a paused run; this one is running")
            elif dec.step_once:
                self._refuse(c, "a step is already under way")
            else:
                dec.step_once = True
                self.event("stepOnce", f"one step from step {step}{who}", command=self._ack(c, "applied"))
        elif n == "set_lambda":
            if self.adapters.method != "qgoft":
                self._refuse(c, f"lambda is not used by {self.adapters.method}")
            else:
                old = dec.lam
                dec.lam = c.value
                self.lambda_history.append({"step": step, "from": old, "to": c.value})
                self.event("lambdaChanged", f"lambda {old:g} -> {c.value:g}{who}", command=self._ack(c, "applied"),
                           **{"from": old, "to": c.value})
        elif n == "set_lr":
            if not self.peak_lr:
                return self._refuse(c, "no optimizer with a learning rate is attached to the recorder")
            old = dec.lr
            dec.lr = c.value
            self.event("lrChanged", f"lr {old:g} -> {c.value:g}{who}", command=self._ack(c, "applied"),
                       **{"from": old, "to": c.value})
        elif n == "snapshot":
            path = self.snapshot(step)
            if path is None:
                self._refuse(c, f"the snapshot of step {step} could not be written (see the warning event)")
            else:
                rel = os.path.relpath(path, self.session_dir)
                self.event("snapshotSaved", f"snapshot saved to {rel}{who}", command=self._ack(c, "applied"), path=path)
        elif n == "evaluate":
            dec.evaluate = True
            self.event("evaluationRequested", f"evaluation requested at step {step}{who}", command=self._ack(c, "applied"))
        elif n == "stop":
            dec.stop = True
            self.event("stopRequested", f"stop requested at step {step}{who}", command=self._ack(c, "applied"))

    def _poll(self, dec: _Decision, step: int) -> _Decision:
        if self.is_writer and not self.closed:
            try:
                cmds = self.commands.read_new()
            except Exception as e:
                self._warn(self.commands.path, e)
                cmds = []
            for c in cmds:
                try:
                    self._handle(c, dec, step)
                except Exception as e:  # a command never ends the run
                    self._warn(f"command on line {c.line}", e)
                    try:
                        self._refuse(c, f"internal error: {e}")
                    except Exception:
                        pass
        return dec

    def _sync(self, dec: _Decision) -> _Decision:
        d = _dist()
        if d is None or self.world == 1:
            return dec
        t = dec.tensor(self._device())
        d.broadcast(t, 0)
        return _Decision.of(t)

    def _adopt(self, dec: _Decision):
        if dec.lam != self.lam:
            self.lam = dec.lam
            self.adapters.lam = dec.lam
        if self.peak_lr and dec.lr != self.peak_lr and dec.lr > 0:
            self.scale_learning_rate(dec.lr / self.peak_lr)
        was = self.paused
        self.paused = dec.paused
        if self.is_writer and was != dec.paused:
            self._set_status("paused" if dec.paused else "running")

    def boundary(self, step: int) -> Control:
        """Applies the commands written since the last look at the boundary after `step` steps, on
        every rank at once; blocks while paused (until resume, step or stop). Never raises for a
        bad command or a write error."""
        self.step_no = step
        dec = _Decision(paused=self.paused, lam=self.lam, lr=self.peak_lr)
        dec = self._adopt_sync(self._poll(dec, step))
        evaluate = dec.evaluate
        while dec.paused and not dec.step_once and not dec.stop:
            time.sleep(self.poll_seconds)
            dec = _Decision(paused=self.paused, lam=self.lam, lr=self.peak_lr)
            dec = self._adopt_sync(self._poll(dec, step))
            evaluate = evaluate or dec.evaluate
            if evaluate and self.evaluate_fn is not None:
                self._run_eval(step)
                evaluate = False
        if dec.stop:
            self.stop_requested = True
        if evaluate and self.evaluate_fn is not None:
            self._run_eval(step)
            evaluate = False
        return Control(stop=self.stop_requested, evaluate=evaluate, lam=self.lam, lr=self.peak_lr)

    def _adopt_sync(self, dec: _Decision) -> _Decision:
        dec = self._sync(dec)
        self._adopt(dec)
        return dec

    def run_evaluation(self, step: int):
        """Calls the `evaluate` function given to the recorder and records its result."""
        self._run_eval(step)

    def _run_eval(self, step: int):
        t0 = time.time()
        r = self.evaluate_fn(step)
        if r:
            self.log_eval(step, r.get("loss", float("nan")), r.get("accuracy", float("nan")), r.get("samples", 0),
                          r.get("seconds", time.time() - t0))

    def step(self, step: int, **record) -> Control:
        """One call per optimisation step, after the optimizer (and scheduler) step: the step
        record, statistics every `stats_every` steps, an autosave every `snapshot_every` steps,
        then the command boundary. Every rank calls it."""
        try:
            self.record_step(step, **record)
            if self.stats_every and step % self.stats_every == 0:
                self.record_stats(step)
            if self.snapshot_every and step % self.snapshot_every == 0:
                self.snapshot(step, kind="autosave")
        except Exception as e:
            if self.is_writer:
                self._warn(f"records of step {step}", e)
        return self.boundary(step)

    def _at_exit(self):
        """A process that ends without close() (an exception, Ctrl-C) still ends its session:
        a final snapshot and status `stopped`, as qgoft's trainer does on SIGINT (so readers do
        not have to wait for the heartbeat to go stale)."""
        if not self.closed:
            try:
                self.event("warning", "the process ended without closing the session; closing it as stopped")
                self.close(status="stopped")
            except Exception as e:
                self.log(f"warning: closing the session at exit: {e}")

    def close(self, status: Optional[str] = None, final_snapshot: bool = True, error: Optional[str] = None):
        """Ends the session: a final snapshot, status finished (stopped after a stop request, failed
        with `error`), the lock removed. Safe to call twice."""
        if self.closed:
            return
        if not self.is_writer:
            self.closed = True
            return
        status = status or ("failed" if error else ("stopped" if self.stop_requested else "finished"))
        if final_snapshot and status != "failed":
            if self.snapshot(self.step_no) is None and status == "finished":
                status = "stopped"
        if error:
            self.event("failed", error)
        else:
            self.event(status, f"{status} at step {self.step_no}")
        with self._io_lock:
            for f in self._pending:
                self._flush(f)
            self._fsync_logs()
        self._set_status(status)
        self.closed = True
        self._hb_stop.set()
        if self._hb_thread is not None:
            self._hb_thread.join(timeout=2)
        try:
            os.unlink(os.path.join(self.session_dir, "lock"))
        except OSError:
            pass
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = {}
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
