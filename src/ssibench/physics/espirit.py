"""ESPIRiT coil sensitivities from a fully sampled k-space centre.

Uecker, Lai, Murphy, Virtue, Elad, Pauly, Vasanawala, Lustig, "ESPIRiT — an eigenvalue approach
to autocalibrating parallel MRI: where SENSE meets GRAPPA", Magn. Reson. Med. 71:990–1001, 2014.

Every k × k window of consistent multicoil k-space lies in the signal subspace of the calibration
matrix; in the image domain this becomes, at every pixel x, an N × N Hermitian matrix M(x) whose
eigenvector of eigenvalue 1 is the vector of coil sensitivities S(x). Shapes: k-space and maps
``(B, N, H, W)`` or ``(N, H, W)`` complex, DC at ``(H//2, W//2)`` (see :mod:`ssibench.fft`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["espirit_maps"]


def espirit_maps(
    kspace: Tensor,
    calib_size: int | tuple[int, int],
    *,
    kernel_size: int = 6,
    threshold: float = 0.02,
    crop: float = 0.95,
) -> Tensor:
    """ESPIRiT coil sensitivity maps (one set) from the centre of multicoil k-space.

    With the calibration matrix A (one row per k × k window of the centred ``calib_size`` block,
    all coils, so ``(n_windows, N k²)``) and its SVD A = U Σ Vᴴ, the rows uᵢ of Vᴴ with
    σᵢ > threshold · σ_max span the signal subspace. Each kernel uᵢ, zero-padded to (H, W), has the
    image gᵢ = √(HW) F⁻¹ pad(uᵢ) (F⁻¹ the centred orthonormal inverse DFT), and

        M(x) = (1/k²) Σᵢ gᵢ(x) gᵢ(x)ᴴ,

    scaled so that the eigenvalue is 1 where the coil images are fully consistent (as sigpy's
    ``EspiritCalib``). The maps are the leading eigenvector S(x) of M(x), set to zero where its
    eigenvalue λ_max(x) ≤ ``crop``, with the phase of coil 0 removed: S ← S · conj(S₀)/|S₀|
    (zero where S₀ = 0). Where kept, Σₙ |Sₙ(x)|² = 1.

    M is evaluated from the kept projector P = Σᵢ uᵢ uᵢᴴ summed along its (2k − 1)² lags rather
    than kernel by kernel: the same matrices (to rounding) at a cost independent of the number of
    kernels kept. The per-pixel eigenproblems are solved exactly by ``torch.linalg.eigh``, one
    sample at a time, so memory grows with N² H W, not with B.

    Args:
        kspace: ``(B, N, H, W)`` or ``(N, H, W)`` complex64/complex128, DC at ``(H//2, W//2)``.
        calib_size: rows and columns of the centred calibration block (an int: square). Its crop
            starts at ``H//2 − rows//2`` (fastMRI/sigpy convention for even and odd sizes).
        kernel_size: side k of the square kernel (the sliding window).
        threshold: singular values above ``threshold · σ_max`` are kept, in [0, 1).
        crop: maps are zeroed where the leading eigenvalue is at most ``crop``, in [0, 1).

    Returns:
        Maps of the shape and dtype of ``kspace``.

    Raises:
        ValueError: ``kspace`` not complex or not 3-D/4-D; the calibration block larger than
            k-space or smaller than the kernel; ``threshold`` or ``crop`` outside [0, 1).

    Example:
        >>> kspace = torch.randn(2, 4, 32, 32, dtype=torch.complex64)
        >>> espirit_maps(kspace, 16).shape
        torch.Size([2, 4, 32, 32])
    """
    rows, cols = _check_arguments(kspace, calib_size, kernel_size, threshold, crop)
    batched = kspace.ndim == 4
    kspace = kspace if batched else kspace.unsqueeze(0)
    calib = _calibration_block(kspace, (rows, cols))
    projector = _signal_projector(_calibration_matrix(calib, kernel_size), threshold)
    lags = _lag_sums(projector, kspace.shape[1], kernel_size)
    height, width = kspace.shape[-2:]
    # One sample at a time: the per-pixel matrices take N² H W entries (250 MB in complex64 at
    # 16 × 384 × 320), and eigh needs as much again for the eigenvectors.
    maps = torch.stack([_leading_maps(q, height, width, kernel_size, crop) for q in lags])
    return maps if batched else maps[0]


def _calibration_block(kspace: Tensor, size: tuple[int, int]) -> Tensor:
    """The centred (rows, cols) block of k-space, starting at (H//2 − rows//2, W//2 − cols//2).

    kspace: ``(..., H, W)`` → ``(..., rows, cols)``, a view.
    """
    (height, width), (rows, cols) = kspace.shape[-2:], size
    top, left = height // 2 - rows // 2, width // 2 - cols // 2
    return kspace[..., top : top + rows, left : left + cols]


def _calibration_matrix(calib: Tensor, kernel_size: int) -> Tensor:
    """Hankel-block calibration matrix: every k × k window of every coil, one window per row.

    Row (r, c) holds calib[n, r + j₁, c + j₂] at column n k² + j₁ k + j₂.
    calib: ``(B, N, R, C)`` → ``(B, (R − k + 1)(C − k + 1), N k²)``.
    """
    batch, n_coils = calib.shape[:2]
    windows = calib.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)  # (B, N, r, c, k, k)
    windows = windows.permute(0, 2, 3, 1, 4, 5)
    return windows.reshape(batch, -1, n_coils * kernel_size**2)


def _signal_projector(matrix: Tensor, threshold: float) -> Tensor:
    """P = Σᵢ uᵢ uᵢᴴ over the rows uᵢ of Vᴴ (A = U Σ Vᴴ) with σᵢ > threshold · σ_max.

    The rows of A lie in the span of these uᵢ (taken as column vectors), so P projects a window
    onto the signal subspace. Keeping a 0/1 weight per singular vector, rather than slicing,
    lets every sample keep its own number of kernels without a host sync.
    matrix: ``(B, n_windows, K)`` → ``(B, K, K)``.
    """
    _, singular, vh = torch.linalg.svd(matrix, full_matrices=False)
    keep = (singular > threshold * singular[..., :1]).to(vh.dtype)
    return (vh.mT * keep.unsqueeze(-2)) @ vh.conj()


def _lag_sums(projector: Tensor, n_coils: int, kernel_size: int) -> Tensor:
    """Q[n, m, δ] = Σ_{j − j′ = δ} P[(n, j), (m, j′)], the projector summed along its lags.

    M(x) = (1/k²) Σᵢ gᵢ gᵢᴴ expands to (1/k²) Σ_δ Q[δ] exp(2πi ⟨δ, x − c⟩ / (H, W)), a
    trigonometric polynomial with (2k − 1)² lags δ ∈ {−(k−1), …, k−1}², index δ + k − 1 here.
    Evaluating it costs N² (2k − 1) H W, whereas padding and transforming every kernel costs
    n_kept N² H W (n_kept is often in the hundreds).
    projector: ``(B, N k², N k²)`` → ``(B, N, N, 2k − 1, 2k − 1)``.
    """
    k = kernel_size
    p = projector.reshape(-1, n_coils, k, k, n_coils, k, k)  # [b, n, j₁, j₂, m, j₁′, j₂′]
    p = p.permute(0, 1, 4, 2, 5, 3, 6).reshape(-1, n_coils, n_coils, k * k, k * k)
    # lag_of[l, j k + j′] = 1 where j − j′ = l − (k − 1): sums the diagonals by one matmul.
    j = torch.arange(k, device=projector.device)
    lag = (j[:, None] - j[None, :]).reshape(-1) + k - 1
    lags = torch.arange(2 * k - 1, device=projector.device)
    lag_of = (lags[:, None] == lag[None, :]).to(projector.dtype)
    return lag_of @ p @ lag_of.mT


def _lag_phases(size: int, kernel_size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """E[x, l] = exp(2πi δ (x − size//2) / size), δ = l − (k − 1).  Returns ``(size, 2k − 1)``.

    The centred inverse DFT of lag δ evaluated at pixel x (without the 1/√size factor).
    """
    lags = torch.arange(-(kernel_size - 1), kernel_size, device=device)
    pixels = torch.arange(size, device=device) - size // 2
    # Reduce δ (x − c) mod size in integers: exact, so the phase error does not grow with δ x.
    turns = torch.remainder(pixels[:, None] * lags[None, :], size)
    angle = turns.to(dtype.to_real()) * (2 * math.pi / size)
    return torch.polar(torch.ones_like(angle), angle)


def _image_matrices(lags: Tensor, height: int, width: int, kernel_size: int) -> Tensor:
    """M(x) = (1/k²) Σ_δ Q[δ] exp(2πi ⟨δ, x − c⟩ / (H, W)) at every pixel x.

    lags: ``(N, N, 2k − 1, 2k − 1)`` from :func:`_lag_sums` → ``(H, W, N, N)`` Hermitian.
    """
    n_coils, n_lags = lags.shape[0], lags.shape[-1]
    rows = _lag_phases(height, kernel_size, lags.dtype, lags.device)
    cols = _lag_phases(width, kernel_size, lags.dtype, lags.device)
    half = (lags @ cols.mT / kernel_size**2).permute(2, 3, 0, 1)  # (2k − 1, W, N, N)
    # The large contraction as one (H, 2k − 1) × (2k − 1, W N N) matmul, whose output is already
    # laid out as the contiguous (H, W, N, N) batch that eigh wants.
    full = rows @ half.reshape(n_lags, -1)
    return full.reshape(height, width, n_coils, n_coils)


def _leading_maps(lags: Tensor, height: int, width: int, kernel_size: int, crop: float) -> Tensor:
    """Leading eigenvector of M(x), phase-normalised to coil 0, zero where λ_max ≤ crop.

    lags: ``(N, N, 2k − 1, 2k − 1)`` → maps ``(N, H, W)``.
    """
    # eigh reads one triangle only, so M needs no explicit symmetrisation.
    values, vectors = torch.linalg.eigh(_image_matrices(lags, height, width, kernel_size))
    maps = vectors[..., -1].permute(2, 0, 1)  # eigenvalues ascend: the last is λ_max
    maps = maps * torch.sgn(maps[:1]).conj()
    return maps * (values[..., -1] > crop)


def _check_arguments(
    kspace: Tensor,
    calib_size: int | tuple[int, int],
    kernel_size: int,
    threshold: float,
    crop: float,
) -> tuple[int, int]:
    """Validate the inputs of :func:`espirit_maps`; returns the calibration (rows, cols)."""
    if not kspace.is_complex() or kspace.ndim not in (3, 4):
        raise ValueError(
            "kspace must be complex with shape (B, N, H, W) or (N, H, W); got "
            f"{kspace.dtype} {tuple(kspace.shape)}"
        )
    if isinstance(calib_size, int) and not isinstance(calib_size, bool):
        size = (calib_size, calib_size)
    elif (
        isinstance(calib_size, tuple | list)
        and len(calib_size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in calib_size)
    ):
        size = (calib_size[0], calib_size[1])
    else:
        raise ValueError(
            f"calib_size must be an int or a pair of ints (rows, cols); got {calib_size!r}"
        )
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be at least 1; got {kernel_size}")
    spatial = tuple(kspace.shape[-2:])
    if any(s > n for s, n in zip(size, spatial, strict=True)):
        raise ValueError(f"calibration block {size} is larger than the k-space {spatial}")
    if any(s < kernel_size for s in size):
        raise ValueError(
            f"calibration block {size} is smaller than the kernel ({kernel_size}, {kernel_size}); "
            "enlarge calib_size or reduce kernel_size"
        )
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must lie in [0, 1); got {threshold}")
    if not 0 <= crop < 1:
        raise ValueError(f"crop must lie in [0, 1); got {crop}")
    return size
