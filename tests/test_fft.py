import numpy as np
import pytest
import torch

from ssibench.fft import fft2c, ifft2c, to_complex, to_real


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (16, 5)])
def test_fft2c_matches_numpy_centred_orthonormal(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho"))
    got = fft2c(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 4, 7, 9)])
def test_fft2c_is_unitary_and_inverted_by_ifft2c(shape):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, dtype=torch.complex128, generator=g)
    k = fft2c(x)
    assert torch.allclose(k.norm(), x.norm(), rtol=1e-12)
    assert torch.allclose(ifft2c(k), x, atol=1e-12)


def test_dc_sits_at_centre_for_even_sizes():
    k = fft2c(torch.ones(8, 6, dtype=torch.complex64))
    assert torch.argmax(k.abs()).item() == 4 * 6 + 3


def test_real_complex_round_trip_and_layout():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 2, 3, 5, generator=g)
    z = to_complex(x)
    assert z.shape == (2, 3, 5)
    assert torch.equal(z.real, x[:, 0])
    assert torch.equal(z.imag, x[:, 1])
    assert torch.equal(to_real(z), x)


def test_to_complex_rejects_a_missing_pair_dimension():
    with pytest.raises(ValueError, match=r"\(B, 2, \.\.\.\); got \(2, 3, 5\)"):
        to_complex(torch.zeros(2, 3, 5))
