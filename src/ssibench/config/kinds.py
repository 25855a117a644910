"""The physics kinds a scenario may name, and what each implies (no torch import).

The workflow's checks, the run plan and the method table need these facts before any tensor
exists; :mod:`ssibench.physics` maps each kind to its operator class.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssibench.errors import ConfigError

__all__ = [
    "ACQUIRED_KINDS",
    "MEASURED_KINDS",
    "PHYSICS_KINDS",
    "SIMULATED_2D_KINDS",
    "TIME_SERIES_KINDS",
    "PhysicsKind",
    "physics_kind",
]


@dataclass(frozen=True)
class PhysicsKind:
    """One acquisition model.

    Attributes:
        name: the ``physics`` value of a scenario and the ``physics`` attribute of a store.
        coils: k-space has a coil dim, ``(B, 2, N, H, W)``, and the store holds coil maps.
        time_series: T frames, one mask per frame: masks ``(B|1, 1, T, H, W)``,
            y ``(B, 2, T, H, W)``.
        video: the ground truth is a video ``(B, 2, T, H, W)`` (else an image ``(B, 2, H, W)``).
        description: one line for listings and error messages.
        acquired: the measurements are the raw volumes' own k-space, retrospectively
            undersampled (nothing is simulated from the magnitude image): the store holds
            per-sample coil maps estimated from the data, and the noise is the acquisition's own,
            its level estimated from the data.
        ground_truth: the store holds a reference image per slice. ``False`` for k-space
            undersampled at acquisition (``measured-multicoil``): training only, by methods that
            need no reference; nothing is evaluated on it.
    """

    name: str
    coils: bool
    time_series: bool
    video: bool
    description: str
    acquired: bool = False
    ground_truth: bool = True

    @property
    def mask_ndim(self) -> int:
        """Dims of a stored mask: 5 for a time series ``(n, 1, T, H, W)``, else 4."""
        return 5 if self.time_series else 4


#: Every physics kind, by name, in the order listings show them.
PHYSICS_KINDS: dict[str, PhysicsKind] = {
    kind.name: kind
    for kind in (
        PhysicsKind("single-coil", False, False, False, "single-coil Cartesian MRI"),
        PhysicsKind("multicoil", True, False, False, "multicoil Cartesian MRI (birdcage maps)"),
        PhysicsKind("sequential", False, True, False, "a static image acquired as T frames"),
        PhysicsKind("dynamic", False, True, True, "a video, one mask per frame"),
        PhysicsKind(
            "raw-multicoil",
            True,
            False,
            False,
            "acquired multicoil k-space, ESPIRiT maps",
            acquired=True,
        ),
        PhysicsKind(
            "measured-multicoil",
            True,
            False,
            False,
            "multicoil k-space undersampled at acquisition, no ground truth (training only)",
            acquired=True,
            ground_truth=False,
        ),
    )
}
#: The kinds with T frames (masks and k-space carry a time dim).
TIME_SERIES_KINDS = tuple(name for name, kind in PHYSICS_KINDS.items() if kind.time_series)
#: The 2-D kinds (one k-space per image), simulated by :mod:`ssibench.simulate`'s 2-D path.
SIMULATED_2D_KINDS = tuple(
    name for name, kind in PHYSICS_KINDS.items() if not kind.time_series and not kind.acquired
)
#: The kinds measured from fully sampled raw k-space (:mod:`ssibench.simulate.acquired`).
ACQUIRED_KINDS = tuple(
    name for name, kind in PHYSICS_KINDS.items() if kind.acquired and kind.ground_truth
)
#: The kinds of k-space undersampled at acquisition, without ground truth
#: (:mod:`ssibench.simulate.measured`).
MEASURED_KINDS = tuple(name for name, kind in PHYSICS_KINDS.items() if not kind.ground_truth)


def physics_kind(name: object, where: str = "physics") -> PhysicsKind:
    """The kind called ``name``.

    Raises:
        ConfigError: for an unknown name, listing the allowed ones (``where`` names the key).
    """
    if not isinstance(name, str) or name not in PHYSICS_KINDS:
        raise ConfigError(f"{where}: got {name!r}; allowed: {', '.join(PHYSICS_KINDS)}")
    return PHYSICS_KINDS[name]
