"""qgoft-torch: qGOFT / GOFT adapters for PyTorch and qgoft sessions written from PyTorch runs.

    import qgoft_torch
    adapters = qgoft_torch.apply_adapters(model, qgoft_torch.DEFAULT_TARGETS, method="qgoft", lam=1e-4)
    trainer = Trainer(..., callbacks=[qgoft_torch.QGOFTCallback(adapters, session_dir="sessions/run")])
"""
from .adapters import GivensLinear, QGOFTAdapters, apply_adapters, snapshot_module_name
from .commands import append_command, parse_line
from .layout import GivensPlan, givens_plan
from .session import DEFAULT_TARGETS, Control, SessionRecorder
from .snapshot import load_snapshot, write_snapshot

__version__ = "0.1.0"


def __getattr__(name):
    if name in ("QGOFTCallback", "MeanPoolClassifier"):
        try:
            from . import hf
        except ImportError as e:
            raise ImportError(f"qgoft_torch.{name} needs transformers ({e}); pip install 'qgoft-torch[hf]' "
                              "or transformers and accelerate") from e
        return getattr(hf, name)
    raise AttributeError(name)


__all__ = ["GivensLinear", "QGOFTAdapters", "apply_adapters", "snapshot_module_name", "givens_plan", "GivensPlan",
           "SessionRecorder", "Control", "DEFAULT_TARGETS", "load_snapshot", "write_snapshot", "append_command",
           "parse_line", "QGOFTCallback", "MeanPoolClassifier"]
