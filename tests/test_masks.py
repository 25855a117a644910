import itertools
from fractions import Fraction

import pytest
import torch

from ssibench import masks
from ssibench.masks import (
    MASK_GENERATORS,
    BernoulliSplittingMaskGenerator,
    EquispacedMaskGenerator,
    GaussianMaskGenerator,
    MaskGenerator,
    RandomMaskGenerator,
    center_block,
    inclusion_probabilities,
    line_counts,
    make_mask_generator,
    sample_without_replacement,
    successive_sampling_inclusion,
)


def test_reference_line_counts_at_320_and_6x():
    assert line_counts(320, 6, 0.08) == (25, 28)
    assert line_counts(320, 2, 0.0) == (0, 160)


@pytest.mark.parametrize("name", sorted(MASK_GENERATORS))
def test_masks_are_binary_whole_columns_with_a_full_centre(name):
    g = torch.Generator().manual_seed(0)
    masks = make_mask_generator(name, 4, None).sample(5, 10, 64, g)
    assert masks.shape == (5, 1, 10, 64)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(masks, masks[:, :, :1].expand_as(masks))  # columns are whole lines
    n_center, _ = line_counts(64, 4, 0.08)
    start = (64 - n_center + 1) // 2 if name == "equispaced" else 64 // 2 - n_center // 2
    assert masks[:, 0, 0, start : start + n_center].eq(1).all()


@pytest.mark.parametrize("cls", [GaussianMaskGenerator, RandomMaskGenerator])
def test_exact_column_counts_and_centre_at_320(cls):
    g = torch.Generator().manual_seed(0)
    masks = cls(acceleration=6).sample(16, 4, 320, g)
    columns = masks[:, 0, 0]
    assert columns.sum(dim=1).eq(53).all()
    assert columns[:, 148:173].eq(1).all()
    assert columns[:, 147].sum() + columns[:, 173].sum() < 32  # the centre block ends at 172


def test_gaussian_pdf_matches_the_reference_values():
    pdf = GaussianMaskGenerator(acceleration=6).pdf(320)
    assert pdf[0].item() == pytest.approx(0.0010363, abs=1e-7)
    assert pdf[147].item() == pytest.approx(0.0124867, abs=1e-7)
    assert pdf[173].item() == pytest.approx(0.0124867, abs=1e-7)
    assert pdf[148:173].eq(0).all()
    assert pdf.sum().item() == pytest.approx(1.0)


def test_first_drawn_column_follows_the_pdf():
    # In Gumbel-top-k the largest key is exactly a draw from the pdf; check by a chi-square bound.
    width, draws = 40, 40000
    pdf = GaussianMaskGenerator(acceleration=4).pdf(width)
    g = torch.Generator().manual_seed(1)
    first = sample_without_replacement(pdf.float().log(), 1, draws, g)[:, 0]
    counts = torch.bincount(first, minlength=width).double()
    support = pdf > 0
    expected = pdf[support] * draws
    chi2 = ((counts[support] - expected) ** 2 / expected).sum().item()
    dof = int(support.sum()) - 1
    assert chi2 < dof + 5 * (2 * dof) ** 0.5
    assert counts[~support].sum() == 0


def test_inclusion_frequencies_match_sequential_multinomial_draws():
    width, k, draws = 24, 6, 20000
    weights = GaussianMaskGenerator(acceleration=4).density(width).float()
    ours = sample_without_replacement(weights.log(), k, draws, torch.Generator().manual_seed(2))
    ours_freq = torch.zeros(width).index_add_(0, ours.flatten(), torch.ones(draws * k)) / draws
    g = torch.Generator().manual_seed(3)
    loop = torch.stack(
        [torch.multinomial(weights, k, replacement=False, generator=g) for _ in range(draws)]
    )
    loop_freq = torch.zeros(width).index_add_(0, loop.flatten(), torch.ones(draws * k)) / draws
    assert torch.allclose(ours_freq, loop_freq, atol=0.02)


@pytest.mark.parametrize(
    "cls", [GaussianMaskGenerator, RandomMaskGenerator, EquispacedMaskGenerator]
)
def test_vectorised_sampler_equals_a_per_sample_loop(cls):
    generator = cls(acceleration=4)
    batch = generator.sample(6, 8, 48, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    loop = torch.cat([generator.sample(1, 8, 48, g) for _ in range(6)])
    assert torch.equal(batch, loop)


def test_sampling_is_deterministic_and_leaves_global_rng_untouched():
    state = torch.random.get_rng_state()
    a = GaussianMaskGenerator().sample(3, 8, 64, torch.Generator().manual_seed(4))
    b = GaussianMaskGenerator().sample(3, 8, 64, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_equispaced_columns_are_evenly_spaced_outside_the_centre():
    masks = EquispacedMaskGenerator(acceleration=4, center_fraction=0.0).sample(
        3, 2, 64, torch.Generator().manual_seed(0)
    )
    for row in masks[:, 0, 0]:
        cols = row.nonzero().flatten()
        assert set(torch.diff(cols).tolist()) == {4}
        # as the reference: columns round(o + 4k) strictly below W - 1
        assert cols.tolist() == list(range(int(cols[0]), 63, 4))


def test_unknown_generator_name_suggests_the_closest():
    with pytest.raises(ValueError, match="did you mean 'gaussian'"):
        make_mask_generator("gausian", 4)


def test_too_low_acceleration_for_the_centre_is_refused():
    with pytest.raises(ValueError, match="center_fraction"):
        line_counts(64, 1.5, 0.9)


def test_bernoulli_split_keeps_exactly_the_reference_count_inside_the_mask():
    g = torch.Generator().manual_seed(0)
    omega = GaussianMaskGenerator(acceleration=6).sample(4, 320, 320, g)
    split = BernoulliSplittingMaskGenerator(0.6).sample(omega, g)
    assert split.sum(dim=(1, 2, 3)).eq(10176).all()  # int(0.6 * 53 * 320)
    assert torch.count_nonzero(split * (1 - omega)) == 0


def test_bernoulli_split_of_a_shared_mask_differs_per_sample():
    g = torch.Generator().manual_seed(0)
    omega = torch.ones(1, 1, 8, 8)
    split = BernoulliSplittingMaskGenerator(0.5).sample(omega, g, batch_size=3)
    assert split.shape == (3, 1, 8, 8)
    assert split.sum(dim=(1, 2, 3)).eq(32).all()
    assert not torch.equal(split[0], split[1])


def test_bernoulli_split_is_uniform_over_the_sampled_points():
    g = torch.Generator().manual_seed(0)
    omega = torch.zeros(1, 1, 4, 5)
    omega[..., [0, 2, 3]] = 1  # K = 12 points
    split = BernoulliSplittingMaskGenerator(0.5).sample(omega, g, batch_size=6000)
    freq = split.mean(dim=0)[0]
    assert torch.allclose(freq[omega[0, 0] == 1], torch.full((12,), 0.5), atol=0.03)


def test_bernoulli_vectorised_equals_per_sample_loop():
    omega = GaussianMaskGenerator(acceleration=4).sample(5, 6, 32, torch.Generator().manual_seed(1))
    splitter = BernoulliSplittingMaskGenerator(0.6)
    batch = splitter.sample(omega, torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    loop = torch.cat([splitter.sample(omega[i : i + 1], g) for i in range(5)])
    assert torch.equal(batch, loop)


# ------------------------------------------------------------------- inclusion probabilities


def _brute_force_inclusion(weights, k):
    """Exact πᵢ in rational arithmetic: Σ over all ordered k-tuples of Π wᵢ / (remaining weight)."""
    w = [Fraction(v) for v in weights.tolist()]
    total = sum(w)
    inclusion = [Fraction(0)] * len(w)
    for order in itertools.permutations(range(len(w)), k):
        probability, remaining = Fraction(1), total
        for i in order:
            probability *= w[i] / remaining
            remaining -= w[i]
        for i in order:
            inclusion[i] += probability
    return torch.tensor([float(v) for v in inclusion], dtype=torch.float64)


#: Every acquisition setting of the benchmark at full width, plus the split of weighted SSDU.
FULL_WIDTH_GENERATORS = {
    f"{name}-{acceleration}": make_mask_generator(name, acceleration)
    for name in sorted(MASK_GENERATORS)
    for acceleration in (2, 4, 6, 8, 12)
} | {"split": GaussianMaskGenerator(2, 0.0)}


@pytest.mark.parametrize(
    "weights",
    [
        [0.1, 2.0, 0.5, 3.0, 1e-3, 0.7],
        [1e-6, 1e-3, 1.0, 1.0, 1.0, 1e3],  # a weight ratio of 10⁹
    ],
    ids=["moderate", "extreme"],
)
def test_successive_sampling_inclusion_equals_exact_enumeration(weights):
    weights = torch.tensor(weights, dtype=torch.float64)
    for k in range(len(weights) + 1):
        got = successive_sampling_inclusion(weights, k)
        assert got.dtype == torch.float64
        assert torch.allclose(got, _brute_force_inclusion(weights, k), rtol=0, atol=1e-14)


@pytest.mark.parametrize("k", [1, 99])
def test_inclusion_of_very_few_and_very_many_draws_is_consistent(k):
    weights = torch.linspace(1.0, 20.0, 100, dtype=torch.float64)
    p = successive_sampling_inclusion(weights, k)
    assert p.sum().item() == pytest.approx(k, abs=1e-11)
    assert (p.diff() > 0).all()  # heavier items are more likely drawn
    assert ((p > 0) & (p < 1)).all()


def test_successive_sampling_refuses_bad_weights_and_counts():
    with pytest.raises(ValueError, match="positive weights"):
        successive_sampling_inclusion(torch.tensor([1.0, 0.0, 2.0]), 1)
    with pytest.raises(ValueError, match="k = 4 of n = 3"):
        successive_sampling_inclusion(torch.tensor([1.0, 2.0, 3.0]), 4)


def test_a_coarse_quadrature_is_refined_until_the_probabilities_sum_to_k(monkeypatch):
    weights = torch.linspace(1.0, 20.0, 40, dtype=torch.float64)
    accurate = successive_sampling_inclusion(weights, 20)
    monkeypatch.setattr(masks.inclusion, "INCLUSION_QUADRATURE_ORDER", 4)
    monkeypatch.setattr(masks.inclusion, "INCLUSION_SUBPANELS", (2,))
    with pytest.raises(RuntimeError, match="sum to"):  # 4 nodes per half panel miss Σπ = k
        successive_sampling_inclusion(weights, 20)
    monkeypatch.setattr(masks.inclusion, "INCLUSION_SUBPANELS", (2, 32))
    refined = successive_sampling_inclusion(weights, 20)
    assert torch.allclose(refined, accurate, rtol=0, atol=1e-13)


def test_gaussian_column_probabilities_equal_exact_enumeration():
    generator = GaussianMaskGenerator(acceleration=2, center_fraction=0.25)  # 2 centre + 2 lines
    pdf = generator.pdf(8)
    candidates = pdf > 0
    expected = torch.ones(8, dtype=torch.float64)
    expected[candidates] = _brute_force_inclusion(pdf[candidates], 2)
    got = inclusion_probabilities(generator, 8)
    assert torch.allclose(got, expected, rtol=0, atol=1e-14)
    assert not torch.allclose(got[candidates], 2 * pdf[candidates], atol=1e-3)  # not n · pdf


def test_uniform_and_equispaced_probabilities_equal_their_closed_forms():
    p = inclusion_probabilities(RandomMaskGenerator(acceleration=2, center_fraction=0.25), 16)
    n_center, n_lines = line_counts(16, 2, 0.25)  # 4 centre columns (6…9) and 4 of the other 12
    expected = torch.full((16,), n_lines / (16 - n_center), dtype=torch.float64)
    expected[6:10] = 1.0
    assert torch.allclose(p, expected, rtol=0, atol=1e-15)
    # spacing 4, offsets 0…3, columns round(o + 4k) < 63: each column but the last 1 time in 4
    p = inclusion_probabilities(EquispacedMaskGenerator(acceleration=4, center_fraction=0.0), 64)
    assert torch.equal(p[:63], torch.full((63,), 0.25, dtype=torch.float64))
    assert p[63] == 0
    assert torch.equal(inclusion_probabilities(RandomMaskGenerator(1.0), 16), torch.ones(16))


def test_equispaced_masks_are_rows_of_the_offset_table():
    generator = EquispacedMaskGenerator(acceleration=6)
    table = generator.offset_columns(96)
    drawn = generator.sample(50, 1, 96, torch.Generator().manual_seed(0))[:, 0, 0].double()
    assert (drawn[:, None, :] == table[None]).all(dim=2).any(dim=1).all()
    assert torch.equal(inclusion_probabilities(generator, 96), table.mean(dim=0))


@pytest.mark.parametrize(
    "mask_generator",
    [
        GaussianMaskGenerator(4),
        GaussianMaskGenerator(3),
        RandomMaskGenerator(4),
        EquispacedMaskGenerator(4),
        GaussianMaskGenerator(2, 0.0),
    ],
    ids=["gaussian", "gaussian-3", "random", "equispaced", "gaussian-split"],
)
def test_inclusion_probabilities_match_the_sampler_frequencies_at_32(mask_generator):
    draws, width = 20000, 32
    masks_ = mask_generator.sample(draws, 1, width, torch.Generator().manual_seed(11))
    frequency = masks_[:, 0, 0].double().mean(dim=0)
    exact = inclusion_probabilities(mask_generator, width)
    tolerance = 5 * (exact * (1 - exact) / draws).sqrt() + 1e-12  # 5 standard errors
    assert ((frequency - exact).abs() <= tolerance).all()


@pytest.mark.parametrize(
    "mask_generator", FULL_WIDTH_GENERATORS.values(), ids=FULL_WIDTH_GENERATORS.keys()
)
def test_inclusion_probabilities_at_full_width(mask_generator):
    width, draws = 320, 8000
    p = inclusion_probabilities(mask_generator, width)
    assert p.shape == (width,)
    assert p.dtype == torch.float64
    assert ((p >= 0) & (p <= 1)).all()
    masks_ = mask_generator.sample(draws, 1, width, torch.Generator().manual_seed(3))[:, 0, 0]
    tolerance = 5 * (p * (1 - p) / draws).sqrt() + 1e-12
    assert ((masks_.double().mean(dim=0) - p).abs() <= tolerance).all()
    if not isinstance(mask_generator, EquispacedMaskGenerator):
        n_center, n_lines = line_counts(
            width, mask_generator.acceleration, mask_generator.effective_center_fraction
        )
        assert p.sum().item() == pytest.approx(n_center + n_lines, abs=1e-10)
        assert p[center_block(width, n_center)].eq(1).all()
        pdf = mask_generator.pdf(width)  # equal weights (j, W − j of a Gaussian): equal π
        same = (pdf[:, None] == pdf[None, :]) & (pdf > 0)
        assert ((p[:, None] - p[None, :]).abs()[same] <= 1e-14).all()


def test_inclusion_probabilities_are_cached_per_generator_and_width_and_copied():
    generator = GaussianMaskGenerator(5)
    first = inclusion_probabilities(generator, 24)
    first.fill_(-1.0)
    hits = masks.inclusion._cached_inclusion.cache_info().hits
    again = inclusion_probabilities(GaussianMaskGenerator(5.0), 24)  # an equal generator
    assert masks.inclusion._cached_inclusion.cache_info().hits == hits + 1
    assert (again >= 0).all()


def test_inclusion_probabilities_are_refused_for_unknown_generators():
    class Other(MaskGenerator):
        def sample(self, batch_size, height, width, generator):
            return torch.ones(batch_size, 1, height, width)

    with pytest.raises(TypeError, match="supported"):
        inclusion_probabilities(Other(), 16)


@pytest.mark.parametrize("name", ["gaussian", "random", "equispaced"])
def test_center_lines_fix_the_acs_block(name: str) -> None:
    """center_lines = 20 at W = 320, R = 8: the 20 centre columns always, 40 columns in all."""
    generator = make_mask_generator(name, 8, center_lines=20)
    masks = generator.sample(16, 4, 320, torch.Generator().manual_seed(3))
    columns = masks[:, 0, 0]
    assert torch.all(columns[:, 150:170] == 1)
    if name != "equispaced":  # equispaced spacing only approximates W / R columns
        assert torch.all(columns.sum(dim=1) == 40)
        assert inclusion_probabilities(generator, 320).sum().item() == pytest.approx(40)


def test_center_lines_refuses_center_fraction_and_bad_counts() -> None:
    with pytest.raises(ValueError, match="not both"):
        make_mask_generator("random", 8, center_fraction=0.04, center_lines=20)
    with pytest.raises(ValueError, match="center_lines must be ≥ 0"):
        make_mask_generator("random", 8, center_lines=-1)
    with pytest.raises(ValueError, match="leaves -12 random lines"):
        make_mask_generator("random", 8, center_lines=20).sample(1, 4, 64, torch.Generator())
