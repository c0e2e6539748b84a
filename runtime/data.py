"""Byte-level tokenizer, memory-mapped token files and the deterministic sample order.

The corpus is built once into the checkpoint volume (which every pool mounts), so a job that fails over
to another pool, with another image and another Python, still reads the very same tokens in the very
same order. No torch here: the launcher builds the file before any worker starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tandem.runtime.config import DataConfig
from tandem.runtime.faults import FaultError

EOS = 256  # ends every document; bytes are 0..255
VOCAB = 258  # bytes + EOS + one spare id (BOS) for callers that want one
TOKEN_DTYPE = np.uint16


def encode(text: str | bytes) -> np.ndarray:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return np.frombuffer(data, dtype=np.uint8).astype(TOKEN_DTYPE)


def decode(tokens: np.ndarray | list[int]) -> str:
    return bytes(int(t) for t in tokens if int(t) < 256).decode("utf-8", errors="replace")


def source_files(config: DataConfig) -> Iterator[Path]:
    if config.path is None:
        root = Path(sysconfig.get_paths()["stdlib"])
        # Sorted, and without third-party packages, so two machines with one Python build the same corpus.
        yield from sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
        return
    path = Path(config.path)
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from sorted(p for p in path.rglob("*") if p.is_file())
    else:
        raise FaultError("user", "DataNotFound", f"data.path {config.path!r} does not exist")


def corpus_key(config: DataConfig) -> str:
    source = "stdlib" if config.path is None else os.path.abspath(config.path)
    return hashlib.sha256(f"{source}|{config.max_bytes}".encode()).hexdigest()[:16]


def build_token_file(config: DataConfig, folder: str | Path) -> Path:
    """Build (or reuse) the token file for `config` under `folder`; returns its path. Atomic."""
    folder = Path(folder)
    target = folder / f"corpus-{corpus_key(config)}.u16"
    if target.exists() and target.with_suffix(".json").exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    parts: list[np.ndarray] = []
    total, files = 0, 0
    for path in source_files(config):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        data = data[: config.max_bytes - total]
        parts.append(encode(data))
        parts.append(np.array([EOS], dtype=TOKEN_DTYPE))
        total += len(data)
        files += 1
        if total >= config.max_bytes:
            break
    if total < 1024:
        raise FaultError("user", "DataTooSmall", f"the corpus has only {total} bytes (need at least 1024)")
    tokens = np.concatenate(parts)
    # A name of its own: every node's launcher builds the file at once on the shared volume, and each is pid 1 in
    # its pod. The content is the same, so whichever rename comes last wins harmlessly.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    tokens.tofile(tmp)
    meta = {"tokens": int(tokens.size), "files": files, "sha256": hashlib.sha256(tokens.tobytes()).hexdigest()}
    meta_tmp = tmp.with_suffix(".json.tmp")
    meta_tmp.write_text(json.dumps(meta))
    # Meta first, tokens last: a reader that sees the token file also sees its meta.
    os.replace(meta_tmp, target.with_suffix(".json"))
    os.replace(tmp, target)
    return target


@dataclass(frozen=True)
class SampleOrder:
    """Which tokens sample i is: a seeded permutation of fixed-length chunks, one per epoch."""

    n_tokens: int
    seq_len: int
    seed: int
    shuffle: bool

    @property
    def n_chunks(self) -> int:
        return (self.n_tokens - 1) // self.seq_len

    def start(self, sample: int) -> int:
        epoch, index = divmod(sample, self.n_chunks)
        chunk = int(_permutation(self.n_chunks, self.seed, epoch)[index]) if self.shuffle else index
        return chunk * self.seq_len


@lru_cache(maxsize=4)
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def rank_samples(step: int, global_batch: int, world: int, rank: int, first_sample: int, first_step: int) -> range:
    """The global sample indices rank `rank` trains on at `step` (1-based).

    The global batch is one contiguous block of sample indices per step, split into equal contiguous
    parts per rank; so the set of samples of a step does not depend on the world size.
    """
    per_rank = global_batch // world
    base = first_sample + (step - first_step - 1) * global_batch + rank * per_rank
    return range(base, base + per_rank)


class TokenFile:
    def __init__(self, path: str | Path, seq_len: int, seed: int, shuffle: bool) -> None:
        self.path = Path(path)
        self.tokens = np.memmap(self.path, dtype=TOKEN_DTYPE, mode="r")
        meta = json.loads(self.path.with_suffix(".json").read_text())
        self.sha256: str = meta["sha256"]
        if self.tokens.size <= seq_len + 1:
            raise FaultError("user", "DataTooSmall", f"{self.path} has {self.tokens.size} tokens; seqLen is {seq_len}")
        self.order = SampleOrder(int(self.tokens.size), seq_len, seed, shuffle)

    def batch(self, samples: range | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """inputs, targets: int64 [len(samples), seq_len]."""
        seq = self.order.seq_len
        rows = np.stack([self.tokens[s : s + seq + 1] for s in map(self.order.start, samples)]).astype(np.int64)
        return rows[:, :-1], rows[:, 1:]
