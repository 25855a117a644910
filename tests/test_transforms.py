import pytest
import torch

from ssibench.transforms import Rotate, rotate


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("size", [(8, 8), (7, 7)])
def test_rotation_by_multiples_of_90_is_exact_and_counter_clockwise(k, size):
    x = torch.randn(2, 2, *size, generator=torch.Generator().manual_seed(0))
    out = rotate(x, torch.full((2,), 90.0 * k))
    assert torch.equal(out, torch.rot90(x, k=k, dims=(-2, -1)))


def test_zero_angle_is_the_identity_and_angles_are_per_sample():
    x = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    out = rotate(x, torch.tensor([0.0, 90.0]))
    assert torch.equal(out[0], x[0])
    assert torch.equal(out[1], torch.rot90(x[1], 1, dims=(-2, -1)))


def test_rotation_preserves_a_centred_disc_and_zero_fills_corners():
    size = 33
    coords = torch.arange(size) - size // 2
    disc = ((coords[:, None] ** 2 + coords[None, :] ** 2) <= 8**2).float()
    full = torch.ones(1, 1, size, size)
    rotated = rotate(disc[None, None], torch.tensor([37.0]))[0, 0]
    # a digital disc is rotation invariant up to nearest-neighbour flips on its rim
    assert (rotated != disc).sum() <= 0.1 * disc.sum()
    assert torch.equal(rotated[12:21, 12:21], disc[12:21, 12:21])
    corners = rotate(full, torch.tensor([45.0]))
    assert corners[0, 0, 0, 0] == 0 and corners[0, 0, size // 2, size // 2] == 1


def test_random_angles_are_integers_within_limits_and_reproducible():
    transform = Rotate()
    a = transform.angles(500, torch.Generator().manual_seed(3))
    b = transform.angles(500, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(a, a.round())
    assert a.abs().max() < 360 and (a < 0).any() and (a > 0).any()
    group = Rotate(multiples=90).angles(200, torch.Generator().manual_seed(0))
    assert set(group.tolist()) <= {0.0, 90.0, 180.0, 270.0, -90.0, -180.0, -270.0}


def test_rotate_acts_identically_on_real_and_imaginary_channels():
    real = torch.randn(1, 1, 9, 9, generator=torch.Generator().manual_seed(1))
    x = torch.cat([real, 2 * real], dim=1)
    out = Rotate()(x, torch.Generator().manual_seed(2))
    assert torch.equal(out[:, 1], 2 * out[:, 0])
