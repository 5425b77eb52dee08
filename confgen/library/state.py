"""The progress file ``OUT.resume.json`` of a run: what a resumed run must share with the interrupted one
(:func:`fingerprint`), reading it back (:func:`load_state`) and recording a finished chunk after appending its
records to the output (:func:`commit`)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from confgen.chem.files import atomic_write
from confgen.errors import ConfgenError
from confgen.library.chunks import ChunkResult
from confgen.library.options import RunOptions

FORMAT = 1


def new_state(fingerprint: dict, next_index: int, totals: dict) -> dict:
    """The progress file's content at the start of a run (nothing written yet)."""
    return {"format": FORMAT, "run": fingerprint, "next_index": next_index, "bytes": 0, "totals": totals}


def save_state(path: Path, state: dict) -> None:
    """Write the progress file (atomic: a temp file renamed into place)."""
    atomic_write(path, lambda fh: json.dump(state, fh, indent=1))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(input_path: Path, options: RunOptions, shard: tuple[int, int], total: int) -> dict:
    """Everything a resumed run must share with the interrupted one (JSON-able)."""
    from confgen.checkpoint import default_checkpoint_path
    from confgen.config import resolve_preset

    model = Path(options.model) if options.model else default_checkpoint_path()
    if model is None or not model.is_file():
        raise ConfgenError(f"model checkpoint {options.model or '(shipped default)'} does not exist")
    sampler = resolve_preset(options.preset, dict(options.preset_overrides)).to_dict()
    import torch

    return {"input_sha256": _sha256(input_path), "input_records": total, "shard": list(shard),
            "model_sha256": _sha256(model), "sampler": sampler, "seed": options.seed,
            "num_confs": options.num_confs, "num_confs_factor": options.num_confs_factor, "relax": options.relax,
            "device": torch.device(options.device).type, "fragments": options.fragments, "stereo": options.stereo,
            "max_stereoisomers": options.max_stereoisomers, "count_column": options.count_column}



def load_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
        if state.get("format") != FORMAT:
            raise ValueError(f"format {state.get('format')!r}")
        for key in ("run", "next_index", "bytes", "totals"):
            state[key]  # noqa: B018 - presence check
        return state
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfgenError(f"{path}: unreadable progress file ({exc}); remove it and the output to start "
                           "again") from None


def commit(fd: int, state_path: Path, state: dict, result: ChunkResult) -> None:
    """Append one chunk's records (one write, fsync), then record it in the progress file (atomic rename)."""
    data = result.sdf.encode()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)
    totals = state["totals"]
    totals["conformers"] += result.conformers
    totals["molecules"] += result.molecules
    totals["failed"] += len(result.errors)
    totals["salts"] = totals.get("salts", 0) + result.salts
    for k, v in result.counters.items():
        totals["counters"][k] = totals["counters"].get(k, 0) + v
    state["bytes"] += len(data)
    state["next_index"] = result.stop
    save_state(state_path, state)
