"""Training losses, one module per family.

consistency (supervised, MC), splitting (SSDU, Noise2Inverse), weighted_splitting (weighted and
robust SSDU), splitting_consistency, moc, equivariant (EI, MOI, MO-EI), equivariant_splitting,
augmentation (VORTEX, Noise2Recon), sure (SURE family, ENSURE), noise (R2R, Neighbor2Neighbor,
Noise2Score), regularisers (TV, Jacobian spectral norms), adversarial (supervised and
unsupervised GAN losses), adversarial_multi_operator (multi-operator GAN losses, UAIR, their
sampler), dynamic (Phase2Phase, Artifact2Artifact), schedulers (loss schedules).
"""

from ssibench.losses.adversarial import (
    SupAdversarialDiscriminatorLoss,
    SupAdversarialGeneratorLoss,
    UnsupAdversarialDiscriminatorLoss,
    UnsupAdversarialGeneratorLoss,
)
from ssibench.losses.adversarial_multi_operator import (
    MultiOperatorUnsupAdversarialDiscriminatorLoss,
    MultiOperatorUnsupAdversarialGeneratorLoss,
    UAIRDiscriminatorLoss,
    UAIRGeneratorLoss,
)
from ssibench.losses.augmentation import AugmentConsistencyLoss, TransformedPhysics
from ssibench.losses.base import Loss, call_loss, mse
from ssibench.losses.consistency import AdjointMCLoss, MCLoss, SupLoss
from ssibench.losses.dynamic import Artifact2ArtifactLoss, FrameSplittingModel, Phase2PhaseLoss
from ssibench.losses.equivariant import EILoss, MOEILoss, MOILoss
from ssibench.losses.equivariant_splitting import (
    EquivariantReconstructor,
    EquivariantSplittingLoss,
)
from ssibench.losses.moc import MOConsistencyLoss
from ssibench.losses.noise import Neighbor2NeighborLoss, R2RLoss, R2RModel, ScoreLoss, ScoreModel
from ssibench.losses.regularisers import FNEJacobianSpectralNorm, JacobianSpectralNorm, TVLoss
from ssibench.losses.schedulers import (
    InterleavedEpochLossScheduler,
    InterleavedLossScheduler,
    RandomLossScheduler,
    StepLossScheduler,
)
from ssibench.losses.splitting import SplittingLoss, SplittingModel
from ssibench.losses.splitting_consistency import SplittingConsistencyLoss
from ssibench.losses.sure import ENSURELoss, SureGaussianLoss, SurePGLoss, SurePoissonLoss
from ssibench.losses.weighted_splitting import RobustSplittingLoss, WeightedSplittingLoss

__all__ = [
    "AdjointMCLoss",
    "Artifact2ArtifactLoss",
    "AugmentConsistencyLoss",
    "EILoss",
    "ENSURELoss",
    "EquivariantReconstructor",
    "EquivariantSplittingLoss",
    "FNEJacobianSpectralNorm",
    "FrameSplittingModel",
    "InterleavedEpochLossScheduler",
    "InterleavedLossScheduler",
    "JacobianSpectralNorm",
    "Loss",
    "MCLoss",
    "MOConsistencyLoss",
    "MOEILoss",
    "MOILoss",
    "MultiOperatorUnsupAdversarialDiscriminatorLoss",
    "MultiOperatorUnsupAdversarialGeneratorLoss",
    "Neighbor2NeighborLoss",
    "Phase2PhaseLoss",
    "R2RLoss",
    "R2RModel",
    "RandomLossScheduler",
    "RobustSplittingLoss",
    "ScoreLoss",
    "ScoreModel",
    "SplittingConsistencyLoss",
    "SplittingLoss",
    "SplittingModel",
    "StepLossScheduler",
    "SupAdversarialDiscriminatorLoss",
    "SupAdversarialGeneratorLoss",
    "SupLoss",
    "SureGaussianLoss",
    "SurePGLoss",
    "SurePoissonLoss",
    "TVLoss",
    "TransformedPhysics",
    "UAIRDiscriminatorLoss",
    "UAIRGeneratorLoss",
    "UnsupAdversarialDiscriminatorLoss",
    "UnsupAdversarialGeneratorLoss",
    "WeightedSplittingLoss",
    "call_loss",
    "mse",
]
