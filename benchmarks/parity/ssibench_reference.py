"""SSIBench's own losses, built on DeepInverse 0.5.0 classes as SSIBench's training code does.

DeepInverse 0.5.0 has no class for three of SSIBench's terms; SSIBench defines them as small
subclasses of DeepInverse losses in its training code (github.com/Andrewwango/ssibench,
``utils/``). They are restated here from their formulas, so that the ssibench side is compared
with DeepInverse's machinery (its ``MCLoss``, ``MOILoss`` and ``SplittingLoss`` with their
splitting wrapper, operator copies and noise):

* adjoint-domain MC: L = MSE(AᴴA x̂, Aᴴ y) (SSIBench's MC term in multicoil);
* multi-operator consistency (after Zhang et al.'s CC-SSDU): L = MSE(y, A f(A_g x̂ [+ n], A_g));
* splitting consistency (after Hu et al.): L = MSE(Ā x̂₁, Ā x̂₂) + MSE(y, A x̂₁) + MSE(y, A x̂₂),
  x̂₂ a second reconstruction from an independent split, Ā the operator with mask 1 − Ω.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

__all__ = ["reference_losses"]


class _FirstArgument(nn.Module):
    """A "metric" that returns its first argument."""

    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        return first


def reference_losses(dinv: Any) -> dict[str, type]:
    """The three SSIBench loss classes on top of ``dinv``'s, by name."""

    class AdjointMCLoss(dinv.loss.MCLoss):
        def forward(self, y: Tensor, x_net: Tensor, physics: Any, **kwargs: Any) -> Tensor:
            return self.metric(physics.A_adjoint(physics.A(x_net)), physics.A_adjoint(y))

    class MOConsistencyLoss(dinv.loss.MOILoss):
        def forward(
            self, x_net: Tensor, y: Tensor, physics: Any, model: nn.Module, **kwargs: Any
        ) -> Tensor:
            # MOILoss.forward computes metric(f(A_g x̂ [+ n], A_g), x̂); with a metric that
            # returns its first argument it yields the second reconstruction itself.
            metric, weight = self.metric, self.weight
            self.metric, self.weight = _FirstArgument(), 1.0
            try:
                x_second = super().forward(x_net, physics, model)
            finally:
                self.metric, self.weight = metric, weight
            return self.weight * self.metric(y, physics.A(x_second))

    class SplittingConsistencyLoss(dinv.loss.SplittingLoss):
        def __init__(self, mask_generator: Any) -> None:
            super().__init__(
                mask_generator=mask_generator, eval_split_input=False, eval_split_output=False
            )

        def forward(
            self, x_net: Tensor, y: Tensor, physics: Any, model: nn.Module, **kwargs: Any
        ) -> Tensor:
            x_second = model(y, physics)  # the wrapper draws a new split
            unacquired = physics.clone()
            unacquired.update(mask=1.0 - physics.mask)
            return (
                self.metric(unacquired.A(x_net), unacquired.A(x_second))
                + self.metric(y, physics.A(x_net))
                + self.metric(y, physics.A(x_second))
            )

    return {
        "AdjointMCLoss": AdjointMCLoss,
        "MOConsistencyLoss": MOConsistencyLoss,
        "SplittingConsistencyLoss": SplittingConsistencyLoss,
    }
