"""Hugging Face pieces (transformers is needed only here): the callback that records a Trainer
run as a qgoft session and applies commands.jsonl at every step boundary, and qgoft's model
(a BERT encoder, mean pooling over real tokens, a linear `classifier`)."""
import math
import time
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from transformers import TrainerCallback

from .adapters import QGOFTAdapters
from .session import SessionRecorder, _dist


class MeanPoolClassifier(nn.Module):
    """qgoft's model: `bert` (a transformers BertModel, no pooler), mean pooling of the last
    hidden state over real tokens, `classifier` = Linear(hidden, classes). Module paths of the
    encoder are `bert.encoder.layer.N...`; snapshots record them as `encoder.layer.N...`."""

    def __init__(self, bert: nn.Module, classes: int):
        super().__init__()
        self.bert = bert
        self.classifier = nn.Linear(bert.config.hidden_size, classes)

    @staticmethod
    def from_pretrained(path: str, classes: int = 2, **kw) -> "MeanPoolClassifier":
        from transformers import BertModel
        bert = BertModel.from_pretrained(path, add_pooling_layer=False, **kw)
        return MeanPoolClassifier(bert, classes)

    def pooled(self, input_ids, attention_mask):
        h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.to(h.dtype).unsqueeze(-1)
        return (h * m).sum(1) / m.sum(1).clamp(min=1)

    def forward(self, input_ids=None, attention_mask=None, labels=None, token_type_ids=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        logits = self.classifier(self.pooled(input_ids, attention_mask).to(self.classifier.weight.dtype))
        out = {"logits": logits}
        if labels is not None:
            out = {"loss": F.cross_entropy(logits.float(), labels), "logits": logits}
        return out


def _warmup_fraction(args, total: int) -> float:
    """Warm-up as a share of the steps: `warmup_ratio` (transformers 4) or `warmup_steps` (a float
    below 1 is a ratio in transformers 5, an integer a count)."""
    r = getattr(args, "warmup_ratio", None)
    if r:
        return float(r)
    w = getattr(args, "warmup_steps", 0) or 0
    if isinstance(w, float) and w < 1:
        return float(w)
    return float(w) / total if total else 0.0


class QGOFTCallback(TrainerCallback):
    """Records a transformers Trainer run as a qgoft session and obeys commands.jsonl.

        adapters = qgoft_torch.apply_adapters(model, DEFAULT_TARGETS, method="qgoft", lam=1e-4)
        trainer = Trainer(model=model, args=args, ..., callbacks=[QGOFTCallback(adapters, session_dir=DIR)])

    At each step boundary (on_step_end, every rank): the step record, statistics every
    `stats_every` steps, then the commands: pause blocks here (all ranks) until resume, step or
    stop; set_lambda changes the penalty strength; set_lr scales the scheduler's base_lrs and the
    param groups (the schedule keeps its shape); snapshot writes snapshots/step-N; evaluate sets
    control.should_evaluate; stop sets control.should_training_stop (a final snapshot follows).
    Other keyword arguments go to SessionRecorder (model, data, labels, snapshot_every, ...)."""

    def __init__(self, adapters: QGOFTAdapters, session_dir: Optional[str] = None, *, max_length: Optional[int] = None,
                 stats_every: int = 50, **recorder_options):
        self.adapters = adapters
        self.session_dir = session_dir
        self.max_length = max_length
        self.stats_every = stats_every
        self.options = recorder_options
        self.recorder: Optional[SessionRecorder] = None
        self._t0 = None
        self._lr = None
        self._grad_norm = None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kw):
        world = _dist().get_world_size() if _dist() else 1
        spe = 0
        dl = kw.get("train_dataloader")
        try:
            if dl is not None:
                spe = max(1, math.ceil(len(dl) / max(1, args.gradient_accumulation_steps)))
        except TypeError:
            spe = 0
        self.recorder = SessionRecorder(self.adapters, self.session_dir, optimizer=optimizer, scheduler=lr_scheduler,
                                        total_steps=state.max_steps, steps_per_epoch=spe, stats_every=self.stats_every,
                                        seed=args.seed, **self.options)
        cfg = {"batchSize": args.per_device_train_batch_size * world * args.gradient_accumulation_steps,
               "epochs": max(1, math.ceil(state.max_steps / spe) if spe and state.max_steps else int(math.ceil(args.num_train_epochs))), "seed": args.seed,
               "warmupFraction": _warmup_fraction(args, state.max_steps), "headWeightDecay": float(args.weight_decay or 0.0),
               "threads": torch.get_num_threads()}
        if args.max_grad_norm:
            cfg["clipGradNorm"] = float(args.max_grad_norm)
        if self.max_length:
            cfg["maxLength"] = int(self.max_length)
        if str(getattr(args, "eval_strategy", getattr(args, "evaluation_strategy", ""))).endswith("steps"):
            cfg["evalEvery"] = int(args.eval_steps or 0)
        self.recorder.update_configuration(**cfg)

    def on_step_begin(self, args, state, control, **kw):
        self._t0 = time.time()

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kw):
        # Gradients are final here (accumulated, all-reduced; HF clipped them just before).
        with torch.no_grad():
            sq = torch.zeros((), dtype=torch.float64)
            for p in self.adapters.trainable_parameters():
                if p.grad is not None:
                    sq += p.grad.detach().double().pow(2).sum().cpu()
            self._grad_norm = float(sq.sqrt())
        opt = optimizer if optimizer is not None else kw.get("optimizer")
        if opt is not None:
            self._lr = float(opt.param_groups[0]["lr"])

    def on_step_end(self, args, state, control, **kw):
        rec = self.recorder
        if rec is None:
            return control
        secs = time.time() - self._t0 if self._t0 else None
        rec.epoch = int(state.epoch or 0)
        ctl = rec.step(state.global_step, lr=self._lr, grad_norm=self._grad_norm, epoch=state.epoch, step_seconds=secs)
        if ctl.stop:
            control.should_training_stop = True
        if ctl.evaluate:
            control.should_evaluate = True
        self._t0 = time.time()  # a pause is not part of the next step's time
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        if self.recorder is None or not metrics:
            return
        samples = 0
        dl = kw.get("eval_dataloader")
        try:
            samples = len(dl.dataset) if dl is not None else 0
        except TypeError:
            pass
        self.recorder.log_eval(state.global_step, metrics.get("eval_loss", float("nan")),
                               metrics.get("eval_accuracy", float("nan")), samples, metrics.get("eval_runtime", 0.0))

    def on_train_end(self, args, state, control, **kw):
        if self.recorder is not None:
            self.recorder.step_no = state.global_step
            self.recorder.close()
