"""The one device resolver: a ``--device`` value (or ``device=`` argument) -> :class:`torch.device`."""

from __future__ import annotations

import torch

from confgen.errors import ConfgenError

_KNOWN = "use cpu, cuda, cuda:N or auto"


def resolve_device(device: str | torch.device | None, local_rank: int | None = None) -> torch.device:
    """``None`` / ``"auto"`` -> cuda if available, else cpu; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
    :class:`torch.device` of those types as given.

    Args:
        device: the requested device.
        local_rank: under torchrun, the process's GPU: plain ``"cuda"`` then means ``cuda:local_rank``.

    Raises:
        ConfgenError: an unknown device, or cuda requested where CUDA is not available.
    """
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = str(device)
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfgenError(f"device {name!r} requested but CUDA is not available (use cpu)")
        if name == "cuda" and local_rank is not None:
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise ConfgenError(f"unknown device {name!r} ({_KNOWN})")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfgenError(f"unknown device {name!r} ({_KNOWN})") from None
