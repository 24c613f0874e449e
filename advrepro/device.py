"""`device=auto|cpu|cuda` and `dtype=float32|float64` resolved to torch objects."""

import torch

from advrepro.errors import UserError

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str) -> torch.device:
    """CUDA when present for `auto`; `cuda` without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(
                f"device={name} was asked for, but no CUDA GPU is available (use device=cpu or auto)"
            )
        return torch.device(name)
    raise UserError(f"unknown device '{name}' (choose auto, cpu or cuda)")


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise UserError(f"unknown dtype '{name}' (choose {', '.join(DTYPES)})")
    return DTYPES[name]
