"""The answer log: every reward the service gave, one JSON line per scored output, appended to a file.

A training run keeps what its trainer logged; with ``REWARD_ANSWER_LOG`` set, the reward service keeps what
it answered, so the two can be compared afterwards from the service's side (``make grpo-smoke`` does). Both
``/v1/rewards`` and ``/openrlhf/reward`` go through the one group path, which writes here. The text
itself is not kept, only its SHA-256: the log may sit on shared storage.

>>> import json, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "answers.jsonl"
>>> log = AnswerLog(path)
>>> log.write([AnswerRecord("g1", "0", "I hear you.", 1.5, 2.0)])
>>> json.loads(path.read_text())["candidate_sha256"] == text_digest("I hear you.")
True
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def text_digest(text: str) -> str:
    """The SHA-256 (hex) of a text's UTF-8 bytes: how the log names an output."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AnswerRecord:
    """One scored output: its group and id as answered, its text, and its rewards."""

    group_id: str
    candidate_id: str
    text: str
    reward: float | None
    raw_reward: float | None


class AnswerLog:
    """Appends records to a JSONL file, one line each, whole lines only (one lock, one write per call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, records: Sequence[AnswerRecord]) -> None:
        """Append the records, stamped with the time of the answer."""
        now = time.time()
        lines = "".join(
            json.dumps(
                {
                    "time": now,
                    "group_id": r.group_id,
                    "candidate_id": r.candidate_id,
                    "candidate_sha256": text_digest(r.text),
                    "reward": r.reward,
                    "raw_reward": r.raw_reward,
                }
            )
            + "\n"
            for r in records
        )
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(lines)
