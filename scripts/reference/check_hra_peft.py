#!/usr/bin/env python3
"""A qgoft HRA snapshot loaded by PEFT gives the hidden states of qgoft's merged export.

Usage: ~/.cache/qgoft/venv/bin/python scripts/reference/check_hra_peft.py SNAPSHOT_DIR MERGED_DIR
(MERGED_DIR from `qgoft export ID --merge --out MERGED_DIR`). Exits 1 when they differ by 1e-4 or
more, or when the adapters change nothing (max |h - h_base| <= 1e-3).
"""
import os, sys, torch, warnings
warnings.filterwarnings("ignore")
from transformers import BertModel, AutoTokenizer
from peft import PeftModel
base_dir = os.path.expanduser("~/.cache/qgoft/minilm-l6")
snap = sys.argv[1]; merged = sys.argv[2]
tok = AutoTokenizer.from_pretrained(base_dir)
batch = tok(["a gripping, beautifully acted film", "dull, predictable and far too long", "ok"], return_tensors="pt", padding=True)
base = BertModel.from_pretrained(base_dir)
pm = PeftModel.from_pretrained(base, snap)  # warns/raises on missing adapter keys
loaded = [k for k in pm.state_dict() if "hra_u" in k]
print("hra_u tensors in the PEFT model:", len(loaded))
pm.eval()
with torch.no_grad():
    h1 = pm(**batch).last_hidden_state
    h0 = BertModel.from_pretrained(base_dir)(**batch).last_hidden_state
    m = BertModel.from_pretrained(merged)
    h2 = m(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).bool()
d12 = ((h1 - h2).abs() * mask).max().item(); d10 = ((h1 - h0).abs() * mask).max().item()
print(f"PEFT vs qgoft merged: max |diff| {d12:.2e}; PEFT vs base (the adapters' effect) {d10:.2e}")
sys.exit(0 if d12 < 1e-4 and d10 > 1e-3 else 1)
