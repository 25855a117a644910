"""Training losses, one module per family (consistency, splitting, equivariant)."""

from ssibench.losses.base import Loss, mse
from ssibench.losses.consistency import AdjointMCLoss, MCLoss, SupLoss
from ssibench.losses.equivariant import EILoss, MOILoss
from ssibench.losses.splitting import SplittingLoss, SplittingModel

__all__ = [
    "AdjointMCLoss",
    "EILoss",
    "Loss",
    "MCLoss",
    "MOILoss",
    "SplittingLoss",
    "SplittingModel",
    "SupLoss",
    "mse",
]
