"""Phase2Phase and Artifact2Artifact (ssibench.losses.dynamic)."""

import pytest
import torch
from torch import nn

from ssibench.losses.dynamic import (
    Artifact2ArtifactLoss,
    Artifact2ArtifactSplitter,
    FrameSplittingModel,
    Phase2PhaseLoss,
    Phase2PhaseSplitter,
)
from ssibench.models.time import TimeAveraging, build_dynamic_modl
from ssibench.physics import DynamicMRI, SequentialMRI, SingleCoilMRI

H, W = 8, 8
CPU = torch.device("cpu")
#: Column sets of 4 frames, disjoint, the odd frames (1, 3) holding the DC column W/2 = 4.
FRAME_COLUMNS = ([0, 3], [4, 6], [1, 7], [2, 5])


def _g(seed):
    return torch.Generator().manual_seed(seed)


class ZeroFilled(nn.Module):
    """f(y, A) = Aᴴ y: a fixed, parameter-free 'network'."""

    def forward(self, y, physics):
        return physics.A_adjoint(y)


class Fixed(nn.Module):
    """Returns a fixed image whatever it is given; records what it was given."""

    def __init__(self, output):
        super().__init__()
        self.output = output
        self.seen = []

    def forward(self, y, physics):
        self.seen.append((y, physics))
        return self.output


def _call(loss, x_net, y, physics, model):
    return loss(x_net=x_net, y=y, physics=physics, model=model, x=None, epoch=0)


def _column_masks(columns, batch=1):
    mask = torch.zeros(batch, 1, len(columns), H, W, dtype=torch.float64)
    for t, cols in enumerate(columns):
        mask[:, :, t, :, cols] = 1.0
    return mask


def _ramp_video(batch, frames, c):
    """Real video whose frame t is the constant image c·t."""
    ramp = c * torch.arange(frames, dtype=torch.float64).view(1, 1, frames, 1, 1)
    video = torch.zeros(batch, 2, frames, H, W, dtype=torch.float64)
    video[:, :1] = ramp
    return video


def _train_forward(loss, model, y, physics):
    adapted = loss.adapt_model(model).train()
    x_net = adapted(y, physics, update_parameters=True)
    return adapted, x_net


# --- splitters ------------------------------------------------------------------------------


def test_phase2phase_splits_even_frames_in_odd_frames_out():
    split = Phase2PhaseSplitter().sample(3, 6, None, CPU)
    assert split.input_frames.tolist() == [[0, 2, 4]] * 3
    assert split.target_frames.tolist() == [[1, 3, 5]] * 3


@pytest.mark.parametrize("frames", [1, 5])
def test_phase2phase_needs_an_even_number_of_frames(frames):
    with pytest.raises(ValueError, match=f"T = {frames}"):
        Phase2PhaseSplitter().sample(1, frames, None, CPU)


def test_artifact2artifact_target_chunk_differs_from_input_chunk_for_every_sample():
    # Two chunks: the reference's shared "previous index" (bug B6) gives a sample its own input
    # chunk as target whenever the previous sample drew the other chunk.
    split = Artifact2ArtifactSplitter(2).sample(256, 4, _g(0), CPU)
    inputs, targets = split.input_frames, split.target_frames
    assert inputs.shape == targets.shape == (256, 2)
    assert torch.equal(inputs[:, 1] - inputs[:, 0], torch.ones(256, dtype=torch.long))
    assert torch.all(inputs[:, 0] % 2 == 0)  # aligned chunks
    assert torch.equal(targets, 2 - inputs + 2 * (inputs % 2))  # the other chunk
    assert 0 < int((inputs[:, 0] == 0).sum()) < 256  # both chunks drawn


def test_artifact2artifact_draws_every_ordered_pair_of_chunks():
    split = Artifact2ArtifactSplitter(1).sample(2000, 3, _g(1), CPU)
    pairs = split.input_frames[:, 0] * 3 + split.target_frames[:, 0]
    counts = torch.bincount(pairs, minlength=9)
    assert counts[[0, 4, 8]].sum() == 0  # never the same chunk
    off_diagonal = counts[[1, 2, 3, 5, 6, 7]].double()
    assert torch.all((off_diagonal - 2000 / 6).abs() < 5 * (2000 / 6) ** 0.5)


def test_artifact2artifact_tuple_size_is_one_size_per_batch_and_every_size_is_used():
    splitter = Artifact2ArtifactSplitter((1, 2))
    generator = _g(2)
    sizes = set()
    for _ in range(40):
        split = splitter.sample(5, 4, generator, CPU)
        sizes.add(split.input_frames.shape[1])
        assert split.target_frames.shape == split.input_frames.shape
    assert sizes == {1, 2}


@pytest.mark.parametrize(("split_size", "frames"), [(3, 4), (4, 4), ((1, 4), 6)])
def test_artifact2artifact_refuses_sizes_that_do_not_cut_two_chunks(split_size, frames):
    with pytest.raises(ValueError, match="split_size"):
        Artifact2ArtifactSplitter(split_size).sample(2, frames, _g(3), CPU)


@pytest.mark.parametrize("split_size", [0, (), (2, -1), 1.5])
def test_artifact2artifact_refuses_bad_split_sizes(split_size):
    with pytest.raises(ValueError, match="split_size"):
        Artifact2ArtifactSplitter(split_size)


def test_artifact2artifact_is_reproducible_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    first = Artifact2ArtifactSplitter((1, 2)).sample(8, 8, _g(4), CPU)
    second = Artifact2ArtifactSplitter((1, 2)).sample(8, 8, _g(4), CPU)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first.input_frames, second.input_frames)
    assert torch.equal(first.target_frames, second.target_frames)


def test_artifact2artifact_needs_a_generator():
    with pytest.raises(ValueError, match="generator"):
        Artifact2ArtifactSplitter(1).sample(1, 4, None, CPU)


# --- the model wrapper ----------------------------------------------------------------------


def test_wrapper_feeds_only_the_input_frames_in_training_and_everything_in_evaluation():
    mask = _column_masks(FRAME_COLUMNS, batch=2)
    physics = DynamicMRI(mask)
    y = physics.A(torch.randn(2, 2, 4, H, W, generator=_g(5), dtype=torch.float64))
    inner = Fixed(torch.zeros(2, 2, 2, H, W))
    model = Phase2PhaseLoss().adapt_model(inner)
    model.train()
    model(y, physics)
    assert model.last_split is None  # only the trainer's forward records the split
    model(y, physics, update_parameters=True)
    seen_y, seen_physics = inner.seen[-1]
    assert torch.equal(seen_y, y[:, :, [0, 2]])
    assert torch.equal(seen_physics.mask, mask[:, :, [0, 2]])
    assert model.last_split.target_frames.tolist() == [[1, 3], [1, 3]]
    model.eval()
    model(y, physics)
    seen_y, seen_physics = inner.seen[-1]
    assert seen_y is y
    assert seen_physics is physics


LOSS_FACTORIES = {
    "phase2phase": lambda dynamic_model: Phase2PhaseLoss(dynamic_model=dynamic_model),
    "artifact2artifact": lambda dynamic_model: Artifact2ArtifactLoss(
        _g(6), dynamic_model=dynamic_model
    ),
}


@pytest.mark.parametrize("name", LOSS_FACTORIES)
def test_adapt_model_is_idempotent_and_wraps_static_models_in_time_averaging(name):
    model = LOSS_FACTORIES[name](True).adapt_model(ZeroFilled())
    assert isinstance(model, FrameSplittingModel)
    assert LOSS_FACTORIES[name](True).adapt_model(model) is model
    assert isinstance(model.model, ZeroFilled)
    static = LOSS_FACTORIES[name](False).adapt_model(ZeroFilled())
    assert isinstance(static.model, TimeAveraging)
    assert isinstance(static.model.model, ZeroFilled)


# --- Phase2Phase loss values ----------------------------------------------------------------


def test_phase2phase_video_hand_value_compares_each_even_frame_with_the_next_odd_frame():
    # Frame t = c·t everywhere, the same columns every frame (DC column 4 included): the Aᴴ model
    # returns the even frames, each one c below its odd neighbour, so the residual on every odd
    # frame is the DC coefficient −c·√(HW) and L = c² HW / (2 |M|), |M| = K·H sampled entries.
    c, columns = 2.0, [0, 2, 4, 7]
    mask = _column_masks([columns] * 6)
    physics = DynamicMRI(mask)
    y = physics.A(_ramp_video(1, 6, c))
    loss = Phase2PhaseLoss()
    model, x_net = _train_forward(loss, ZeroFilled(), y, physics)
    assert x_net.shape == (1, 2, 3, H, W)
    value = _call(loss, x_net, y, physics, model)
    assert value.item() == pytest.approx(c**2 * H * W / (2 * len(columns) * H))


def test_phase2phase_static_hand_values_with_sequential_measurements():
    # Static x; disjoint frames; a model returning x + d (real constant): on the union of the odd
    # frames (columns 2, 4, 5, 6; DC included) F(x + d) − ȳ is the DC term d√(HW), so
    # L = d² HW / (2 · 4 columns · H) = d²; a perfect reconstruction scores 0.
    mask = _column_masks(FRAME_COLUMNS, batch=2)
    physics = SequentialMRI(mask)
    x = torch.randn(2, 2, H, W, generator=_g(7), dtype=torch.float64)
    y = physics.A(x)
    loss = Phase2PhaseLoss(dynamic_model=False)
    for offset, expected in ((0.0, 0.0), (0.5, 0.25)):
        x_net = x.clone()
        x_net[:, 0] += offset
        model, _ = _train_forward(loss, Fixed(x_net), y, physics)
        assert _call(loss, x_net, y, physics, model).item() == pytest.approx(expected, abs=1e-12)


def test_phase2phase_static_loss_averages_repeated_target_samples():
    # Odd frames 1 and 3 both sample column 4 with different noise; the target there is their mean.
    columns = ([0], [4, 6], [1], [4, 5])
    mask = _column_masks(columns)
    physics = SequentialMRI(mask)
    x = torch.randn(1, 2, H, W, generator=_g(8), dtype=torch.float64)
    noise = mask * torch.randn(1, 2, 4, H, W, generator=_g(9), dtype=torch.float64)
    y = physics.A(x) + noise
    loss = Phase2PhaseLoss(dynamic_model=False)
    model, _ = _train_forward(loss, Fixed(x), y, physics)
    residual = torch.zeros(1, 2, H, W, dtype=torch.float64)
    residual[..., 4] = (noise[:, :, 1, :, 4] + noise[:, :, 3, :, 4]) / 2
    residual[..., 6] = noise[:, :, 1, :, 6]
    residual[..., 5] = noise[:, :, 3, :, 5]
    expected = residual.pow(2).sum() / (2 * 3 * H)  # 3 target columns, 2 parts each
    assert _call(loss, x, y, physics, model).item() == pytest.approx(expected.item())


def test_phase2phase_zero_filled_static_model_scores_the_target_energy():
    # With disjoint frames the even frames say nothing about the odd points: Aᴴ-based x̂ is 0 there
    # and L is the mean squared target entry Σ_Ω₂ |y|² / (2 |Ω₂|).
    mask = _column_masks(FRAME_COLUMNS)
    physics = SequentialMRI(mask, sigma=0.1)
    y = physics.measure(torch.randn(1, 2, H, W, generator=_g(10), dtype=torch.float64), _g(11))
    loss = Phase2PhaseLoss(dynamic_model=False)
    model, x_net = _train_forward(loss, ZeroFilled(), y, physics)
    expected = y[:, :, [1, 3]].pow(2).sum() / (2 * 4 * H)
    assert _call(loss, x_net, y, physics, model).item() == pytest.approx(expected.item())


# --- Artifact2Artifact loss values ----------------------------------------------------------


def test_artifact2artifact_video_hand_value_two_chunks():
    # T = 4, s = 2: the target is always the other chunk, 2 frames away, so every compared frame
    # differs by 2c and, with full masks, L = (2c)² HW / (2 HW) = 2c² for any draw and batch.
    c = 0.5
    physics = DynamicMRI(torch.ones(3, 1, 4, H, W, dtype=torch.float64))
    y = physics.A(_ramp_video(3, 4, c))
    loss = Artifact2ArtifactLoss(_g(12), split_size=2)
    model, x_net = _train_forward(loss, ZeroFilled(), y, physics)
    assert x_net.shape == (3, 2, 2, H, W)
    assert _call(loss, x_net, y, physics, model).item() == pytest.approx(2 * c**2)


def test_artifact2artifact_video_value_follows_each_samples_own_chunks():
    # s = 1, T = 5: sample b compares frame k₁ with frame k₂, δ_b = c (k₁ − k₂);
    # L = mean_b δ_b² / 2.
    c = 1.5
    physics = DynamicMRI(torch.ones(1, 1, 5, H, W, dtype=torch.float64))
    y = physics.A(_ramp_video(16, 5, c))
    loss = Artifact2ArtifactLoss(_g(13), split_size=1)
    model, x_net = _train_forward(loss, ZeroFilled(), y, physics)
    split = model.last_split
    delta = c * (split.input_frames[:, 0] - split.target_frames[:, 0]).double()
    assert torch.all(delta != 0)
    value = _call(loss, x_net, y, physics, model)
    assert value.item() == pytest.approx((delta**2).mean().item() / 2)


def test_artifact2artifact_static_hand_value():
    # Static x, frames of one column each, s = 2: a model returning x + d scores d² HW / (2·2·H)
    # when the target chunk holds the DC column (4) and 0 otherwise.
    columns = ([0], [1], [4], [6])
    physics = SequentialMRI(_column_masks(columns))
    x = torch.randn(1, 2, H, W, generator=_g(14), dtype=torch.float64)
    y = physics.A(x)
    d = 0.5
    x_net = x.clone()
    x_net[:, 0] += d
    loss = Artifact2ArtifactLoss(_g(15), split_size=2, dynamic_model=False)
    model, _ = _train_forward(loss, Fixed(x_net), y, physics)
    target_has_dc = bool((model.last_split.target_frames == 2).any())
    expected = d**2 * H * W / (2 * 2 * H) if target_has_dc else 0.0
    assert _call(loss, x_net, y, physics, model).item() == pytest.approx(expected, abs=1e-12)


# --- contract -------------------------------------------------------------------------------


def test_loss_needs_the_adapted_model_after_a_training_forward():
    physics = DynamicMRI(torch.ones(1, 1, 4, H, W))
    y = torch.zeros(1, 2, 4, H, W)
    with pytest.raises(RuntimeError, match="adapt_model"):
        _call(Phase2PhaseLoss(), torch.zeros(1, 2, 2, H, W), y, physics, ZeroFilled())


def test_loss_refuses_two_dimensional_physics():
    loss = Phase2PhaseLoss()
    physics = DynamicMRI(torch.ones(1, 1, 4, H, W))
    y = torch.zeros(1, 2, 4, H, W)
    model, x_net = _train_forward(loss, ZeroFilled(), y, physics)
    with pytest.raises(TypeError, match="SingleCoilMRI"):
        _call(loss, x_net, y, SingleCoilMRI(torch.ones(1, 1, H, W)), model)


def test_dynamic_model_flag_must_match_the_output():
    mask = torch.ones(1, 1, 4, H, W)
    y = torch.zeros(1, 2, 4, H, W)
    video_loss = Phase2PhaseLoss(dynamic_model=True)
    model, _ = _train_forward(video_loss, ZeroFilled(), y, DynamicMRI(mask))
    with pytest.raises(ValueError, match="dynamic_model=False"):
        _call(video_loss, torch.zeros(1, 2, H, W), y, DynamicMRI(mask), model)
    with pytest.raises(TypeError, match="SequentialMRI"):
        _call(video_loss, torch.zeros(1, 2, 2, H, W), y, SequentialMRI(mask), model)
    static_loss = Phase2PhaseLoss(dynamic_model=False)
    model, _ = _train_forward(static_loss, ZeroFilled(), y, SequentialMRI(mask))
    with pytest.raises(ValueError, match="dynamic_model=True"):
        _call(static_loss, torch.zeros(1, 2, 2, H, W), y, SequentialMRI(mask), model)


@pytest.mark.parametrize(
    ("loss", "physics_cls"),
    [
        (Phase2PhaseLoss(), DynamicMRI),
        (Artifact2ArtifactLoss(_g(16), split_size=(1, 2)), DynamicMRI),
        (Phase2PhaseLoss(dynamic_model=False), SequentialMRI),
        (Artifact2ArtifactLoss(_g(17), split_size=2, dynamic_model=False), SequentialMRI),
    ],
)
def test_training_step_with_modl_gives_finite_loss_and_gradients(loss, physics_cls):
    mask = (torch.rand(2, 1, 4, 1, W, generator=_g(18)) < 0.5).float().expand(2, 1, 4, H, W)
    physics = physics_cls(mask, sigma=0.05)
    x = torch.randn(
        (2, 2, 4, H, W) if physics_cls is DynamicMRI else (2, 2, H, W), generator=_g(19)
    )
    y = physics.measure(x, _g(20))
    network = build_dynamic_modl(num_iter=2, scales=2, width=4, generator=_g(21))
    model, x_net = _train_forward(loss, network, y, physics)
    value = _call(loss, x_net, y, physics, model)
    value.backward()
    assert torch.isfinite(value)
    assert network.step_sizes.grad is not None
    model.eval()
    with torch.no_grad():
        full = model(y, physics)
    assert full.shape == x.shape  # evaluation reconstructs from all frames


def test_same_seed_gives_the_same_loss():
    physics = DynamicMRI(torch.ones(1, 1, 6, H, W, dtype=torch.float64))
    y = physics.A(torch.randn(4, 2, 6, H, W, generator=_g(22), dtype=torch.float64))
    values = []
    for _ in range(2):
        loss = Artifact2ArtifactLoss(_g(23), split_size=(1, 2, 3))
        model, x_net = _train_forward(loss, ZeroFilled(), y, physics)
        values.append(_call(loss, x_net, y, physics, model))
    assert torch.equal(values[0], values[1])
