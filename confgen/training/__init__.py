"""Training a score model (``confgen train``): setup, resume, one step, validation and the loop."""

from confgen.training.loop import train, weights_digest
from confgen.training.setup import DistInfo, TrainingError, dist_from_env, lr_factor, make_ema

__all__ = ["DistInfo", "TrainingError", "dist_from_env", "lr_factor", "make_ema", "train", "weights_digest"]
