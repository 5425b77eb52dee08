"""Score networks: equivariant backbones (EGNN, ClofNet) behind one contract, and the noise-conditional model."""

from confgen.models.clofnet import ClofNet
from confgen.models.egnn import EGNN
from confgen.models.score_net import BACKBONES, PRECONDITIONINGS, ScoreModel, build_model

__all__ = ["BACKBONES", "PRECONDITIONINGS", "ClofNet", "EGNN", "ScoreModel", "build_model"]
