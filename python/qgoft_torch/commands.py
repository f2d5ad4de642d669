"""The command channel (docs/sessions.md "commands.jsonl"): reading the lines appended since the
last look (complete lines only; a torn last line is read once complete) and checking each one.
Acknowledging is the recorder's job (one event per line, exactly once)."""
import json
import math
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

COMMANDS = ("pause", "resume", "step", "set_lambda", "set_lr", "snapshot", "evaluate", "stop")


@dataclass
class Command:
    line: int                 # 1-based line number in commands.jsonl
    id: Optional[str]         # None for a line that is not a JSON object with a string id
    name: Optional[str]
    value: Optional[float] = None
    sender: Optional[str] = None
    problem: Optional[str] = None   # why the line is refused before looking at the run's state


def parse_line(text: str, number: int) -> Command:
    """One line of commands.jsonl; never raises (a bad line comes back with `problem` set)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return Command(number, None, None, problem=f"line {number} of commands.jsonl is not JSON")
    if not isinstance(obj, dict):
        return Command(number, None, None, problem=f"line {number} of commands.jsonl is not a JSON object")
    cid = obj.get("id")
    if not isinstance(cid, str) or not cid:
        cid = None
    name = obj.get("command")
    name = name if isinstance(name, str) else None
    sender = obj.get("from") if isinstance(obj.get("from"), str) else None
    c = Command(number, cid, name, sender=sender)
    ver = obj.get("format_version", 1)  # may be left out: version 1
    if not isinstance(ver, int) or isinstance(ver, bool):
        c.problem = "'format_version' must be an integer"
        return c
    if ver > 1:
        c.problem = f"format_version {ver} is newer than this trainer reads (1)"
        return c
    if cid is None:
        c.problem = f"line {number} has no string id"
        return c
    if name is None:
        c.problem = "no command"
        return c
    if name not in COMMANDS:
        c.problem = f"unknown command '{name}'"
        return c
    if name in ("set_lambda", "set_lr"):
        v = obj.get("value")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            c.problem = f"{name} needs a numeric value"
            return c
        v = float(v)
        if not math.isfinite(v):
            c.problem = f"{name} value {v} is not finite"
        elif name == "set_lambda" and v < 0:
            c.problem = f"set_lambda value {v} is negative (lambda must be >= 0)"
        elif name == "set_lr" and v <= 0:
            c.problem = f"set_lr value {v} must be > 0"
        c.value = v
    return c


class CommandReader:
    """Reads commands.jsonl incrementally by byte offset."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0
        self.lines = 0

    def read_new(self) -> List[Command]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        chunk = data[:end + 1]
        self.offset += len(chunk)
        out = []
        for raw in chunk.split(b"\n")[:-1]:
            self.lines += 1
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                out.append(Command(self.lines, None, None, problem=f"line {self.lines} of commands.jsonl is empty"))
                continue
            out.append(parse_line(text, self.lines))
        return out


def append_command(session_dir: str, command: str, value: Optional[float] = None, cid: Optional[str] = None,
                   sender: Optional[str] = None) -> str:
    """Appends one command line with a single write(2) on an O_APPEND file (for scripts and tests).
    Returns its id."""
    import socket
    import time
    if cid is None:
        cid = f"py-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
    obj = {"format_version": 1, "id": cid, "time": time.time(), "command": command}
    if value is not None:
        obj["value"] = value
    if sender:
        obj["from"] = sender
    line = (json.dumps(obj, sort_keys=True) + "\n").encode()
    fd = os.open(os.path.join(session_dir, "commands.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return cid
