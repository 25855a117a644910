"""Adversarial losses, the SkipConv discriminator, the alternating step and unpaired batches."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from ssibench.data.measurements import MeasurementSet
from ssibench.errors import ConfigError
from ssibench.fft import fft2c, to_complex, to_real
from ssibench.losses.adversarial import (
    SupAdversarialDiscriminatorLoss,
    SupAdversarialGeneratorLoss,
    UnsupAdversarialDiscriminatorLoss,
    UnsupAdversarialGeneratorLoss,
    lsgan,
)
from ssibench.losses.adversarial_multi_operator import (
    AdversarialSampler,
    MultiOperatorUnsupAdversarialDiscriminatorLoss,
    MultiOperatorUnsupAdversarialGeneratorLoss,
    UAIRDiscriminatorLoss,
    UAIRGeneratorLoss,
)
from ssibench.masks import RandomMaskGenerator
from ssibench.methods.adversarial import UnpairedBatches
from ssibench.models.discriminators import SkipConvDiscriminator
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps
from ssibench.training.adversarial import adversarial_step, frozen

SIZE = 8


class ConstantD(nn.Module):
    """A discriminator that scores every input c (and records what it was shown)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value
        self.seen: list[Tensor] = []

    def forward(self, inputs: Tensor) -> Tensor:
        self.seen.append(inputs.detach().clone())
        return torch.full((inputs.shape[0],), self.value)


class MeanD(nn.Module):
    """A linear discriminator D(u) = a · mean(u) per sample, with one trainable weight a."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.7))

    def forward(self, inputs: Tensor) -> Tensor:
        return self.a * inputs.flatten(1).mean(dim=1)


class ZeroFilledNet(nn.Module):
    """f(y, A) = s · Aᴴy with one trainable scale s (a network the losses can differentiate)."""

    def __init__(self, scale: float = 2.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))

    def forward(self, y: Tensor, physics: SingleCoilMRI) -> Tensor:
        return self.scale * physics.A_adjoint(y)


def _single_coil(batch: int, seed: int) -> tuple[Tensor, Tensor, SingleCoilMRI]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 2, SIZE, SIZE, generator=g)
    masks = RandomMaskGenerator(acceleration=2).sample(batch, SIZE, SIZE, g)
    physics = SingleCoilMRI(masks)
    return x, physics.A(x), physics


def _unpaired(seed: int, n: int = 6) -> UnpairedBatches:
    x, y, physics = _single_coil(n, 100 + seed)
    data = MeasurementSet(x, y, physics.mask, None, 0.0, "single-coil", "test")
    return UnpairedBatches(data, torch.Generator().manual_seed(seed))


def _sampler(seed: int, unpaired: bool = False) -> AdversarialSampler:
    return AdversarialSampler(
        RandomMaskGenerator(acceleration=2),
        torch.Generator().manual_seed(seed),
        _unpaired(seed) if unpaired else None,
    )


# ---------------------------------------------------------------- discriminator


def _expected_parameters(c_in: int, d_dim: int, blocks: int, height: int, width: int) -> int:
    return 9 * c_in * d_dim + 2 * blocks * 9 * d_dim * d_dim + d_dim * height * width + 1


@pytest.mark.parametrize(
    ("img_size", "expected"), [((16, 16), 1_214_721), ((320, 320), 14_289_153)]
)
def test_discriminator_parameter_count_reference_size(
    img_size: tuple[int, int], expected: int
) -> None:
    d = SkipConvDiscriminator(img_size, torch.Generator().manual_seed(0))
    assert sum(p.numel() for p in d.parameters()) == expected
    assert expected == _expected_parameters(2, 128, 4, *img_size)


def test_discriminator_parameter_count_formula_small() -> None:
    d = SkipConvDiscriminator((6, 10), torch.Generator().manual_seed(0), d_dim=5, d_blocks=3)
    assert sum(p.numel() for p in d.parameters()) == _expected_parameters(2, 5, 3, 6, 10)
    assert all(
        m.bias is None for m in d.modules() if isinstance(m, nn.Conv2d)
    )  # convolutions carry no bias


def test_discriminator_blocks_are_parallel_sums() -> None:
    d = SkipConvDiscriminator((SIZE, SIZE), torch.Generator().manual_seed(1), d_dim=4, d_blocks=2)
    inputs = torch.randn(3, 2, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    act = nn.functional.leaky_relu
    h = act(d.stem[0](inputs), 0.01)
    for a, b in zip(d.branches_a, d.branches_b, strict=True):
        h = act(a[0](h), 0.01) + act(b[0](h), 0.01)  # both read the same h, no identity skip
    expected = h.flatten(1) @ d.head.weight[0] + d.head.bias[0]
    torch.testing.assert_close(d(inputs), expected)


def test_discriminator_shapes_seed_and_global_rng() -> None:
    state = torch.random.get_rng_state()
    d1 = SkipConvDiscriminator((SIZE, SIZE), torch.Generator().manual_seed(3), d_dim=4)
    d2 = SkipConvDiscriminator((SIZE, SIZE), torch.Generator().manual_seed(3), d_dim=4)
    d3 = SkipConvDiscriminator((SIZE, SIZE), torch.Generator().manual_seed(4), d_dim=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p1, p2 in zip(d1.parameters(), d2.parameters(), strict=True):
        assert torch.equal(p1, p2)
    assert not torch.equal(d1.head.weight, d3.head.weight)
    assert d1(torch.zeros(1, 2, SIZE, SIZE)).shape == (1,)  # (B,) even for B = 1
    sigmoid = SkipConvDiscriminator((SIZE, SIZE), torch.Generator(), d_dim=4, use_sigmoid=True)
    scores = sigmoid(10 * torch.randn(5, 2, SIZE, SIZE, generator=torch.Generator()))
    assert bool(((scores > 0) & (scores < 1)).all())


def test_discriminator_refuses_wrong_shape() -> None:
    d = SkipConvDiscriminator((SIZE, SIZE), torch.Generator(), d_dim=4)
    with pytest.raises(ValueError, match=r"expects input \(B, 2, 8, 8\).*\(2, 2, 4, 8, 8\)"):
        d(torch.zeros(2, 2, 4, SIZE, SIZE))  # multicoil k-space


# ---------------------------------------------------------------- closed forms, constant D

C = 0.3


def test_lsgan_closed_form() -> None:
    scores = torch.tensor([0.0, 2.0])
    assert float(lsgan(scores, real=True)) == pytest.approx((1 + 1) / 2)
    assert float(lsgan(scores, real=False)) == pytest.approx((0 + 4) / 2)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: SupAdversarialGeneratorLoss(d), 0.01 * (C - 1) ** 2),
        (lambda d: SupAdversarialDiscriminatorLoss(d), 0.5 * ((C - 1) ** 2 + C**2)),
        (lambda d: UnsupAdversarialGeneratorLoss(d, weight=2.0), 2.0 * (C - 1) ** 2),
        (lambda d: UnsupAdversarialDiscriminatorLoss(d), (C - 1) ** 2 + C**2),
        (lambda d: MultiOperatorUnsupAdversarialGeneratorLoss(d, _sampler(0, True)), (C - 1) ** 2),
        (
            lambda d: MultiOperatorUnsupAdversarialDiscriminatorLoss(d, _sampler(0, True)),
            (C - 1) ** 2 + C**2,
        ),
        (lambda d: UAIRDiscriminatorLoss(d, _sampler(0)), (C - 1) ** 2 + C**2),
    ],
)
def test_constant_discriminator_closed_forms(make, expected: float) -> None:
    x, y, physics = _single_coil(3, 0)
    x_net = x + 0.1
    loss = make(ConstantD(C))
    value = loss(x_net=x_net, y=y, physics=physics, model=ZeroFilledNet(), x=x, epoch=0)
    assert value.ndim == 0
    assert float(value) == pytest.approx(expected)


def test_uair_generator_closed_form() -> None:
    """L = 0.5 (c − 1)² + mean((A_new f(ŷ, A_new) − ŷ)²); with f = 2 Aᴴ: A_new 2 A_newᴴ ŷ = 2 ŷ."""
    x, y, physics = _single_coil(3, 1)
    sampler = _sampler(5)
    loss = UAIRGeneratorLoss(ConstantD(C), sampler)
    value = loss(x_net=x, y=y, physics=physics, model=ZeroFilledNet(2.0), x=None, epoch=0)
    y_hat = sampler.draw(y, physics).physics.A(x)
    expected = 0.5 * (C - 1) ** 2 + float(y_hat.pow(2).mean())
    assert float(value.detach()) == pytest.approx(expected, rel=1e-5)


def test_uair_generator_mc_term_zero_for_zero_filled_model() -> None:
    x, y, physics = _single_coil(2, 2)
    loss = UAIRGeneratorLoss(ConstantD(1.0), _sampler(6), weight_adv=0.5, weight_mc=1.0)
    value = loss(x_net=x, y=y, physics=physics, model=ZeroFilledNet(1.0), x=None, epoch=0)
    assert float(value.detach()) == pytest.approx(0.0, abs=1e-10)  # D fooled, A_new A_newᴴ ŷ = ŷ


def test_supervised_discriminator_needs_ground_truth() -> None:
    x, y, physics = _single_coil(1, 0)
    loss = SupAdversarialDiscriminatorLoss(ConstantD(C))
    with pytest.raises(ConfigError, match="ground truth"):
        loss(x_net=x, y=y, physics=physics, model=ZeroFilledNet(), x=None, epoch=0)


def test_unknown_space_refused() -> None:
    with pytest.raises(ConfigError, match="kspace, A_adjoint, A_dagger"):
        UnsupAdversarialGeneratorLoss(ConstantD(C), space="image")  # type: ignore[arg-type]


def test_multi_operator_discriminator_needs_unpaired_source() -> None:
    with pytest.raises(ConfigError, match="unpaired"):
        MultiOperatorUnsupAdversarialDiscriminatorLoss(ConstantD(C), _sampler(0))


# ---------------------------------------------------------------- what D is shown


def _image(k: Tensor) -> Tensor:
    """Inverse of the centred FFT of k-space ``(B, 2, H, W)`` (the full-mask adjoint)."""
    return SingleCoilMRI(torch.ones(1, 1, SIZE, SIZE)).A_adjoint(k)


def test_multi_operator_real_and_fake_inputs() -> None:
    """Real = F⁻¹ ỹ (other images, own masks); fake = F⁻¹ M_new F x̂; G and D share M_new."""
    x, y, physics = _single_coil(3, 3)
    sampler = _sampler(7, unpaired=True)
    d_g, d_d = ConstantD(C), ConstantD(C)
    g_loss = MultiOperatorUnsupAdversarialGeneratorLoss(d_g, sampler)
    d_loss = MultiOperatorUnsupAdversarialDiscriminatorLoss(d_d, sampler)
    g_loss(x_net=x, y=y, physics=physics, model=ZeroFilledNet(), epoch=0)
    d_loss(x_net=x, y=y, physics=physics, model=ZeroFilledNet(), epoch=0)
    draw = sampler.draw(y, physics)
    fake = _image(to_real(draw.physics.mask[:, 0] * fft2c(to_complex(x))))
    torch.testing.assert_close(d_g.seen[0], fake)
    torch.testing.assert_close(d_d.seen[0], _image(draw.y_real))
    torch.testing.assert_close(d_d.seen[1], fake)
    assert not torch.equal(draw.physics.mask, physics.mask)


def test_uair_spaces_single_and_multicoil() -> None:
    x, _, physics = _single_coil(2, 4)
    sampler = _sampler(8)
    d = ConstantD(C)
    loss = UAIRDiscriminatorLoss(d, sampler)  # single-coil SSIBench: D sees k-space
    y = physics.A(x)
    loss(x_net=x, y=y, physics=physics, model=ZeroFilledNet(), epoch=0)
    torch.testing.assert_close(d.seen[0], y)
    torch.testing.assert_close(d.seen[1], sampler.draw(y, physics).physics.A(x))

    multi = MultiCoilMRI(physics.mask, birdcage_maps(3, SIZE, SIZE))
    y_multi = multi.A(x)
    d_multi = ConstantD(C)
    UAIRDiscriminatorLoss(d_multi, sampler, space="A_adjoint")(
        x_net=x, y=y_multi, physics=multi, model=ZeroFilledNet(), epoch=0
    )
    new = sampler.draw(y_multi, multi).physics
    torch.testing.assert_close(d_multi.seen[0], multi.A_adjoint(y_multi))
    torch.testing.assert_close(d_multi.seen[1], new.A_adjoint(new.A(x)))


# ---------------------------------------------------------------- sampler


def test_sampler_one_draw_per_batch_and_reproducible() -> None:
    _, y, physics = _single_coil(4, 5)
    first, again = _sampler(9, True), _sampler(9, True)
    draw = first.draw(y, physics)
    assert first.draw(y, physics) is draw  # same batch tensor: same draw
    assert draw.physics.mask.shape == (4, 1, SIZE, SIZE)
    assert not torch.equal(draw.physics.mask[0], draw.physics.mask[1])  # one mask per sample
    other = first.draw(y.clone(), physics)  # a new batch: a new draw
    assert not torch.equal(other.physics.mask, draw.physics.mask)
    replay = again.draw(y, physics)
    assert torch.equal(replay.physics.mask, draw.physics.mask)
    assert torch.equal(replay.y_real, draw.y_real)


def test_unpaired_batches_rows_and_seed() -> None:
    x, y, physics = _single_coil(6, 10)
    data = MeasurementSet(x, y, physics.mask, None, 0.0, "single-coil", "test")
    batches = UnpairedBatches(data, torch.Generator().manual_seed(1))
    y_real, physics_real = batches(4)
    rows = [int((y - y_real[i]).flatten(1).abs().sum(dim=1).argmin()) for i in range(4)]
    assert len(set(rows)) == 4  # distinct rows
    for i, row in enumerate(rows):
        assert torch.equal(y_real[i], y[row])
        assert torch.equal(physics_real.mask[i], physics.mask[row])
    replay, _ = UnpairedBatches(data, torch.Generator().manual_seed(1))(4)
    assert torch.equal(replay, y_real)
    with pytest.raises(ValueError, match=r"\[1, 6\]"):
        batches(7)


# ---------------------------------------------------------------- detaching and the step


@pytest.mark.parametrize(
    "make",
    [
        lambda d: SupAdversarialDiscriminatorLoss(d),
        lambda d: UnsupAdversarialDiscriminatorLoss(d),
        lambda d: MultiOperatorUnsupAdversarialDiscriminatorLoss(d, _sampler(1, True)),
        lambda d: UAIRDiscriminatorLoss(d, _sampler(1)),
    ],
)
def test_discriminator_losses_send_no_gradient_to_the_network(make) -> None:
    x, y, physics = _single_coil(2, 6)
    model, d = ZeroFilledNet(), MeanD()
    x_net = model(y, physics)
    make(d)(x_net=x_net, y=y, physics=physics, model=model, x=x, epoch=0).backward()
    assert model.scale.grad is None
    assert d.a.grad is not None
    assert float(d.a.grad.abs()) > 0


def _setup(kind: str, seed: int):
    """(model, D, G losses, D losses, optimisers) for the UAIR or multi-operator recipe."""
    model = ZeroFilledNet(1.5)
    d = SkipConvDiscriminator((SIZE, SIZE), torch.Generator().manual_seed(seed), d_dim=4)
    sampler = _sampler(seed, unpaired=kind == "adversarial")
    if kind == "uair":
        g_losses = [UAIRGeneratorLoss(d, sampler)]
        d_losses = [UAIRDiscriminatorLoss(d, sampler)]
    else:
        g_losses = [MultiOperatorUnsupAdversarialGeneratorLoss(d, sampler)]
        d_losses = [MultiOperatorUnsupAdversarialDiscriminatorLoss(d, sampler)]
    opt_g = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3)
    return model, d, g_losses, d_losses, opt_g, opt_d


@pytest.mark.parametrize("kind", ["uair", "adversarial"])
def test_adversarial_step_gradients_are_separate(kind: str) -> None:
    """G grads = ∇ of the G loss alone; D grads = ∇ of the D loss alone at the pre-update x̂."""
    x, y, physics = _single_coil(2, 7)
    model, d, g_losses, d_losses, opt_g, opt_d = _setup(kind, 11)
    ref_model, ref_d = copy.deepcopy(model), copy.deepcopy(d)
    ref = _setup(kind, 11)  # same seeds → same draws as the step below
    g_ref = type(g_losses[0])(ref_d, ref[2][0].sampler)
    d_ref = type(d_losses[0])(ref_d, ref[3][0].sampler)

    g_terms, d_terms = adversarial_step(
        model, d, g_losses, d_losses, opt_g, opt_d, x, y, physics, epoch=0
    )

    x_net = ref_model(y, physics)
    g_value = g_ref(x_net=x_net, y=y, physics=physics, model=ref_model, x=x, epoch=0)
    g_value.backward()
    ref_d.zero_grad(set_to_none=True)
    d_value = d_ref(x_net=x_net.detach(), y=y, physics=physics, model=ref_model, x=x, epoch=0)
    d_value.backward()
    assert g_terms.shape == (1,)
    assert d_terms.shape == (1,)
    torch.testing.assert_close(g_terms[0], g_value.detach())
    torch.testing.assert_close(d_terms[0], d_value.detach())
    torch.testing.assert_close(model.scale.grad, ref_model.scale.grad)
    for p, p_ref in zip(d.parameters(), ref_d.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad)
    # both networks moved
    assert not torch.equal(model.scale, ref_model.scale)
    assert not torch.equal(d.head.weight, ref_d.head.weight)
    assert all(p.requires_grad for p in d.parameters())  # unfrozen again


def test_adversarial_step_reproducible_and_global_rng_untouched() -> None:
    x, y, physics = _single_coil(2, 8)
    results = []
    for _ in range(2):
        model, d, g_losses, d_losses, opt_g, opt_d = _setup("adversarial", 12)
        state = torch.random.get_rng_state()
        for _ in range(2):
            adversarial_step(model, d, g_losses, d_losses, opt_g, opt_d, x, y.clone(), physics, 0)
        assert torch.equal(torch.random.get_rng_state(), state)
        results.append((model.scale.detach().clone(), d.head.weight.detach().clone()))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_frozen_restores_flags() -> None:
    d = MeanD()
    extra = nn.Parameter(torch.zeros(1), requires_grad=False)
    d.register_parameter("extra", extra)
    with frozen(d):
        assert not d.a.requires_grad
    assert d.a.requires_grad
    assert not d.extra.requires_grad
