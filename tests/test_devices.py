"""The one device resolver (confgen.devices)."""

import pytest
import torch

from confgen.devices import resolve_device
from confgen.errors import ConfgenError


def test_cpu_auto_and_errors(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == torch.device("cpu") and resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfgenError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfgenError, match="CUDA is not available"):
        resolve_device("cuda:1")
    for bad in ("gpu", "tpu", "cpu:x"):
        with pytest.raises(ConfgenError, match="unknown device"):
            resolve_device(bad)


def test_cuda_and_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(None) == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda", local_rank=2) == torch.device("cuda:2")
    assert resolve_device("cuda:1", local_rank=2) == torch.device("cuda:1")
    with pytest.raises(ConfgenError, match="unknown device"):
        resolve_device("cuda:x")
