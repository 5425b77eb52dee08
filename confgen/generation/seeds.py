"""Seeds of a generation run: every random draw is keyed by integers (run seed, molecule, conformer, ...)."""

from __future__ import annotations

import numpy as np


def seed_for(*keys: int) -> int:
    """A 63-bit seed derived from integers (e.g. run seed, molecule, conformer, attempt); stable across runs."""
    state = np.random.SeedSequence([int(k) % (2**63) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31 ^ int(state[1])) % (2**63)
