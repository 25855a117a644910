import pytest
import torch

from ssibench.masks import (
    MASK_GENERATORS,
    BernoulliSplittingMaskGenerator,
    EquispacedMaskGenerator,
    GaussianMaskGenerator,
    RandomMaskGenerator,
    line_counts,
    make_mask_generator,
    sample_without_replacement,
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
    # In Gumbel-top-k the largest key is exactly a draw from the pdf; check it by a chi-square bound.
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
