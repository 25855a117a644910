"""Files and configs from anywhere are sized before anything is allocated (issue 20, findings 4, 5).

Finding 4: a measured-k-space mask is checked against the data both ways, and a non-numeric mask
or a mask that is not a dataset is refused. Finding 5: a file declaring a huge array is refused
before the read (h5py would allocate it, filled with the fill value), with the file, the dataset,
its declared shape, the bytes, the limit and how to raise it; ``on_bad_file: skip`` skips it; and
a config whose jobs would need more memory than ``resources`` allows fails before any job runs.
The crafted files are tiny: a dataset created with a shape and no data costs a few bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import nibabel
import numpy as np
import pytest
import torch
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate
from torch import Tensor

from ssibench.data.demo import write_demo_volumes
from ssibench.data.fastmri import BadVolumeError, read_middle_slice
from ssibench.data.images import extract_images, read_image
from ssibench.data.kspace import (
    acquired_columns,
    read_kspace_slices,
    write_undersampled_volumes,
)
from ssibench.data.limits import (
    MAX_BATCH_SIZE,
    MAX_COILS,
    MAX_FRAMES,
    MAX_IMAGE_SIDE,
    MAX_READ_ENV,
    check_read_size,
    max_read_bytes,
)
from ssibench.data.slices import extract_slices
from ssibench.errors import ConfigError, DataFileError
from ssibench.pipeline import check_config, job_resources
from ssibench.simulate import simulate_scenario
from test_extract import GOOD_NAMES, SPLIT, TINY_SIZE, _outputs
from test_measured import ESPIRIT, SIZE, _spec
from test_pipeline import ROOT, _config

#: The finding's file: kspace (3, 200000, 200000) complex64, 320 GB per slice, in 1.4 kB.
HUGE_SHAPE = (3, 200000, 200000)


def _huge_kspace(path: Path, shape: tuple[int, ...] = HUGE_SHAPE) -> Path:
    """A fastMRI-looking file whose ``kspace`` declares ``shape`` and stores nothing."""
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", shape=shape, dtype=np.complex64, chunks=True)
        handle.attrs["acquisition"] = "AXT2"
    assert path.stat().st_size < 100_000  # declaring costs nothing
    return path


# ------------------------------------------------------------ finding 5: declared sizes


def test_a_huge_declared_kspace_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = _huge_kspace(tmp_path / "huge.h5")
    with pytest.raises(BadVolumeError) as raised:
        read_middle_slice(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: dataset 'kspace' declares shape (3, 200000, 200000) ")
    assert "reading (200000, 200000) of it needs 320 GB, over the 2 GB limit of one read" in message
    assert f"export {MAX_READ_ENV}=320000)" in message
    assert message.endswith("re-download or regenerate it, or remove it from the raw-data folder")


def test_a_huge_declared_target_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "target.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((3, 2, 8, 8), np.complex64))
        handle.create_dataset("reconstruction_rss", shape=HUGE_SHAPE, dtype=np.float32)
    with pytest.raises(BadVolumeError, match=r"dataset 'reconstruction_rss' declares shape"):
        read_middle_slice(path)


def _mixed_with_huge(tiny_fastmri_dir: Path, root: Path) -> Path:
    root.mkdir()
    for name in GOOD_NAMES:
        shutil.copy(tiny_fastmri_dir / name, root / name)
    _huge_kspace(root / "huge.h5")
    return root


def test_extract_lists_the_huge_file_and_writes_nothing(
    tiny_fastmri_dir: Path, tmp_path: Path
) -> None:
    raw = _mixed_with_huge(tiny_fastmri_dir, tmp_path / "raw")
    out_dir = tmp_path / "slices"
    with pytest.raises(DataFileError) as raised:
        extract_slices(raw, out_dir / "s.h5", (TINY_SIZE,) * 2, SPLIT, seed=0)
    head, *lines = str(raised.value).splitlines()
    assert head.startswith(f"{raw}: 1 of 6 *.h5 files are unreadable or malformed")
    assert lines == [lines[0]]
    assert lines[0].startswith(f"  {raw / 'huge.h5'}: dataset 'kspace' declares shape")
    assert _outputs(out_dir) == []


def test_skip_leaves_the_huge_file_out_and_extracts_the_others(
    tiny_fastmri_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _mixed_with_huge(tiny_fastmri_dir, tmp_path / "raw")
    store = extract_slices(raw, tmp_path / "s.h5", (TINY_SIZE,) * 2, SPLIT, 0, "skip")
    assert store.source_file == GOOD_NAMES
    assert [name for name, _ in store.skipped_files] == ["huge.h5"]
    assert "320 GB, over the 2 GB limit" in store.skipped_files[0][1]
    assert f"skipping {raw / 'huge.h5'}: dataset 'kspace'" in capsys.readouterr().err


def test_the_read_limit_is_raised_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as handle:  # 4 slices of 2 × 256 × 256 complex64: 1.05 MB each
        handle.create_dataset("kspace", data=np.ones((4, 2, 256, 256), np.complex64))
    monkeypatch.setenv(MAX_READ_ENV, "3")
    assert read_kspace_slices(path, [0, 1]).shape == (2, 2, 256, 256)
    with pytest.raises(BadVolumeError, match=rf"needs 0.00419 GB, .*export {MAX_READ_ENV}=5\)"):
        read_kspace_slices(path, range(4))
    monkeypatch.setenv(MAX_READ_ENV, "5")
    assert read_kspace_slices(path, range(4)).shape == (4, 2, 256, 256)
    monkeypatch.setenv(MAX_READ_ENV, "lots")
    with pytest.raises(ConfigError, match=rf"^{MAX_READ_ENV}: got 'lots'; expected a whole"):
        max_read_bytes()


def test_the_check_counts_the_read_not_the_declared_array(tmp_path: Path) -> None:
    path = tmp_path / "v.h5"
    check_read_size(path, "dataset 'kspace'", (10**9, 4, 8, 8), np.complex64, (1, 4, 8, 8))
    with pytest.raises(BadVolumeError, match=r"reading \(4000, 4, 256, 256\) of it needs 8.39 GB"):
        check_read_size(
            path, "dataset 'kspace'", (10**9, 4, 256, 256), np.complex64, (4000, 4, 256, 256)
        )


def test_undersampling_refuses_a_volume_too_large_to_read_whole(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _huge_kspace(raw / "many_slices.h5", (100_000, 16, 64, 64))  # 0.5 MB a slice, 52 GB in all
    with pytest.raises(BadVolumeError, match=r"many_slices.h5: dataset 'kspace' declares shape"):
        write_undersampled_volumes(raw, tmp_path / "out", "random", 2.0, 8, seed=0)
    assert _outputs(tmp_path / "out") == []


@pytest.fixture(scope="module")
def measured_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two demo volumes (3 slices, 4 coils, 48 × 24 k-space), undersampled 2× with 8 ACS lines."""
    root = tmp_path_factory.mktemp("safe-measured")
    write_demo_volumes(
        root / "raw", n_volumes=2, n_slices=3, height=SIZE, width=SIZE, n_coils=4, seed=0
    )
    write_undersampled_volumes(root / "raw", root / "kspace", "random", 2.0, 8, seed=0)
    return root


def _kspace_dir_with(measured_root: Path, folder: Path, name: str) -> Path:
    """A copy of the measured volumes in ``folder``; the caller adds the crafted file ``name``."""
    shutil.copytree(measured_root / "kspace", folder)
    assert not (folder / name).exists()
    return folder / name


def test_simulating_measured_kspace_refuses_a_huge_volume_and_writes_no_store(
    measured_root: Path, tmp_path: Path
) -> None:
    huge = _kspace_dir_with(measured_root, tmp_path / "kspace", "huge.h5")
    _huge_kspace(huge, (3, 128, 200_000, SIZE))  # its width fits the crop: it is read
    out = tmp_path / "m.h5"
    with pytest.raises(BadVolumeError, match=rf"^{huge}: dataset 'kspace' declares shape"):
        simulate_scenario(None, out, "measured", _spec(tmp_path / "kspace"), seed=0)
    assert _outputs(tmp_path) == ["kspace"]


def test_simulating_acquired_kspace_refuses_a_huge_volume_and_writes_no_store(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw"
    write_demo_volumes(raw, n_volumes=4, n_slices=1, height=16, width=16, n_coils=2, seed=0)
    extract_slices(raw, tmp_path / "slices.h5", (16, 16), (0.5, 0.25, 0.25), seed=0)
    for path in raw.glob("*.h5"):  # every volume replaced after extraction: whichever is read
        path.unlink()
        _huge_kspace(path, (1, 128, 200_000, 16))
    spec = {"physics": "raw-multicoil", "mask": "random", "acceleration": 2, "center_lines": 6}
    spec |= {"crop": [16, 16], "slices_per_volume": 1, "espirit": ESPIRIT | {"kernel_size": 4}}
    out = tmp_path / "acquired.h5"
    with pytest.raises(BadVolumeError, match=r"dataset 'kspace' declares shape \(1, 128, 200000"):
        simulate_scenario(tmp_path / "slices.h5", out, "acquired", spec, 0, raw)
    assert not out.exists()


def test_an_npy_image_over_the_limit_is_a_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(5):
        np.save(folder / f"small{index}.npy", np.random.default_rng(index).random((8, 8)))
    np.save(folder / "large.npy", np.ones((2, 256, 512), np.float32))  # 1.05 MB
    monkeypatch.setenv(MAX_READ_ENV, "1")
    with pytest.raises(BadVolumeError, match=r"the .npy array declares shape \(2, 256, 512\)"):
        read_image(folder / "large.npy")
    store = extract_images(folder, tmp_path / "s.h5", (8, 8), SPLIT, 0, "skip")
    assert [name for name, _ in store.skipped_files] == ["large.npy"]


def test_a_nifti_header_declaring_a_huge_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.nii"
    nibabel.save(nibabel.Nifti1Image(np.zeros((1, 1, 1), np.float32), np.eye(4)), path)
    header = nibabel.load(path).header.copy()
    header.set_data_shape((30_000, 30_000, 3))  # NIfTI-1 sides are int16
    with path.open("r+b") as handle:  # the file's own header, its shape rewritten: 4 B of data
        handle.write(header.binaryblock)
    with pytest.raises(BadVolumeError, match=r"the NIfTI image declares shape \(30000, 30000, 3\)"):
        read_image(path)


# ------------------------------------------------------------ finding 4: masks


def _volume_with_mask(path: Path, mask: object, *, empty_columns: tuple[int, ...] = ()) -> Tensor:
    """k-space (1, 2, 6, 8), data in columns 1, 3, 4, 5 but ``empty_columns``, and ``mask``."""
    kspace = torch.zeros(1, 2, 6, 8, dtype=torch.complex64)
    kspace[..., [c for c in (1, 3, 4, 5) if c not in empty_columns]] = 1
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=kspace.numpy())
        if isinstance(mask, str) and mask == "group":
            handle.create_group("mask")
        else:
            handle.create_dataset("mask", data=mask)
    return kspace


SAMPLED = np.array([0, 1, 0, 1, 1, 1, 0, 0], bool)


def test_a_mask_that_agrees_with_the_data_gives_its_columns(tmp_path: Path) -> None:
    for stored in (SAMPLED, SAMPLED.astype(np.float32), SAMPLED.astype(np.int64)[None]):
        kspace = _volume_with_mask(tmp_path / "v.h5", stored)
        assert acquired_columns(tmp_path / "v.h5", kspace).tolist() == SAMPLED.tolist()


def test_a_mask_calling_an_all_zero_column_sampled_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.h5"
    kspace = _volume_with_mask(path, SAMPLED, empty_columns=(1,))
    with pytest.raises(BadVolumeError) as raised:
        acquired_columns(path, kspace)
    assert str(raised.value).startswith(
        f"{path}: its mask marks k-space columns [1] as sampled, but they are zero in every "
        "slice and coil read"
    )


def test_data_in_a_column_the_mask_calls_unsampled_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.h5"
    kspace = _volume_with_mask(path, SAMPLED & (np.arange(8) != 5))
    with pytest.raises(BadVolumeError, match=r"columns \[5\] hold data that its mask marks as not"):
        acquired_columns(path, kspace)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (np.array([b"1"] * 8), r"dataset 'mask' has dtype \|S1; the sampled columns are 8 zeros"),
        (
            np.zeros(8, [("sampled", "i1"), ("weight", "f4")]),
            r"dataset 'mask' has dtype \[\('sampled', 'i1'\), \('weight', '<f4'\)\]",
        ),
        (SAMPLED * 0.5, r"its mask holds \[0.5\]; a column is sampled \(1\) or not \(0\)"),
        (np.ones(9, bool), r"its mask has 9 entries \(shape \(9,\)\), its k-space 8 columns"),
        ("group", r"'mask' is an HDF5 Group, not a dataset; the sampled columns are a dataset"),
    ],
    ids=["text", "compound", "fractions", "wrong-length", "group"],
)
def test_a_mask_that_is_not_zeros_and_ones_is_refused_naming_the_file(
    tmp_path: Path, stored: object, message: str
) -> None:
    path = tmp_path / "v.h5"
    kspace = _volume_with_mask(path, stored)
    with pytest.raises(BadVolumeError, match=rf"^{path}: {message}"):
        acquired_columns(path, kspace)


def test_a_mask_declaring_a_huge_size_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "v.h5"
    kspace = _volume_with_mask(path, SAMPLED)
    with h5py.File(path, "a") as handle:
        del handle["mask"]
        handle.create_dataset("mask", shape=(10**12,), dtype=bool, chunks=True)
    with pytest.raises(BadVolumeError, match=r"its mask has 1000000000000 entries"):
        acquired_columns(path, kspace)


def test_header_padding_is_not_sampled_even_where_the_mask_says_so(tmp_path: Path) -> None:
    """fastMRI knee: zero-padded columns outside the header's encoding limits (columns 1–6 of 8)."""
    path = tmp_path / "knee.h5"
    kspace = _volume_with_mask(path, np.array([1, 1, 0, 1, 1, 1, 0, 1], bool))
    header = (
        '<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding><encodedSpace>'
        "<matrixSize><x>6</x><y>8</y><z>1</z></matrixSize></encodedSpace><encodingLimits>"
        "<kspace_encoding_step_1><minimum>0</minimum><maximum>5</maximum><center>3</center>"
        "</kspace_encoding_step_1></encodingLimits></encoding></ismrmrdHeader>"
    )
    with h5py.File(path, "a") as handle:
        handle.create_dataset("ismrmrd_header", data=np.bytes_(header.encode()))
    assert acquired_columns(path, kspace).tolist() == SAMPLED.tolist()


def test_simulating_refuses_a_lying_mask_and_writes_no_store(
    measured_root: Path, tmp_path: Path
) -> None:
    """The finding: a text mask counted as all-sampled while a third of the columns are zeros."""
    liar = _kspace_dir_with(measured_root, tmp_path / "kspace", "liar.h5")
    shutil.copy(measured_root / "kspace" / "demo_000.h5", liar)
    with h5py.File(liar, "a") as handle:
        del handle["mask"]
        handle.create_dataset("mask", data=np.array(["1"] * SIZE, dtype="S1"))
    out = tmp_path / "m.h5"
    with pytest.raises(BadVolumeError, match=rf"^{liar}: dataset 'mask' has dtype \|S1"):
        simulate_scenario(None, out, "measured", _spec(tmp_path / "kspace"), seed=0)
    assert not out.exists()


def test_undersampled_volumes_mark_only_columns_with_data(tmp_path: Path) -> None:
    """Raw k-space zero-padded at its edges: the written mask leaves the padding unsampled."""
    raw = tmp_path / "raw"
    write_demo_volumes(raw, n_volumes=1, n_slices=2, height=SIZE, width=SIZE, n_coils=2, seed=0)
    (path,) = raw.glob("*.h5")
    with h5py.File(path, "a") as handle:
        handle["kspace"][..., :3] = 0  # padding, as fastMRI knee volumes have
        handle["kspace"][..., -3:] = 0
    write_undersampled_volumes(raw, tmp_path / "out", "equispaced", 2.0, 8, seed=0)
    written = tmp_path / "out" / path.name
    with h5py.File(written) as handle:
        mask, kspace = handle["mask"][()], handle["kspace"][()]
    assert not mask[:3].any()
    assert not mask[-3:].any()
    assert acquired_columns(written, torch.from_numpy(kspace)).tolist() == mask.tolist()


# ------------------------------------------------------------ finding 5: the config's sizes


SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.mark.parametrize(
    ("overlay", "instance"),
    [
        ({"data": {"image_size": [200_000, 200_000]}}, "['data']['image_size'][0]"),
        ({"scenarios": {"multicoil": {"n_coils": 100_000}}}, "['multicoil']['n_coils']"),
        ({"scenarios": {"sequential": {"n_frames": 1000}}}, "['sequential']['n_frames']"),
        ({"train": {"batch_size": 10**6}}, "['train']['batch_size']"),
    ],
    ids=["image_size", "n_coils", "n_frames", "batch_size"],
)
def test_the_schema_bounds_every_size(overlay: dict, instance: str) -> None:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, overlay)
    with pytest.raises(WorkflowError) as raised:
        validate(config, str(SCHEMA))
    assert "is greater than the maximum of" in str(raised.value)
    assert instance in str(raised.value)


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"data": {"image_size": [200_000, 200_000]}}, "data.image_size: [200000, 200000] is over"),
        ({"scenarios": {"multicoil": {"n_coils": 1000}}}, "scenarios.multicoil.n_coils: 1000 is"),
        ({"method_train": {"sup": {"batch_size": 10**6}}}, "method_train.sup.batch_size: 1000000"),
    ],
    ids=["image_size", "n_coils", "batch_size"],
)
def test_a_config_that_skips_the_schema_is_bounded_by_the_checks(
    overlay: dict, message: str
) -> None:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, overlay)
    with pytest.raises(ConfigError) as raised:
        check_config(config)  # as a Python caller may, without the schema's validation
    assert str(raised.value).startswith(message)
    assert "is over the maximum of" in str(raised.value)


def test_the_schema_maxima_are_the_package_limits() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())["properties"]
    scenario = schema["scenarios"]["additionalProperties"]["properties"]
    assert schema["data"]["properties"]["image_size"]["items"]["maximum"] == MAX_IMAGE_SIDE
    assert scenario["crop"]["items"]["maximum"] == MAX_IMAGE_SIDE
    assert scenario["n_coils"]["maximum"] == MAX_COILS
    assert schema["data"]["properties"]["demo"]["properties"]["n_coils"]["maximum"] == MAX_COILS
    assert scenario["n_frames"]["maximum"] == MAX_FRAMES
    assert schema["train"]["properties"]["batch_size"]["maximum"] == MAX_BATCH_SIZE


def test_a_config_whose_training_outgrows_the_gpu_fails_before_any_job() -> None:
    config = _config(data={"image_size": [4096, 4096]}, train={"batch_size": 1024})
    with pytest.raises(ConfigError) as raised:
        check_config(config)
    message = str(raised.value)
    assert message.startswith(
        "resources.max_gpu_mem_mb: a train job of scenario 'single-coil' would need "
    )
    assert "data.image_size [4096, 4096], 60 volumes, train.batch_size 1024" in message
    assert "over the maximum of 80,000 MB; lower those sizes, or raise" in message


def test_a_config_whose_jobs_outgrow_the_nodes_fails_naming_the_sizes() -> None:
    others = ("single-coil", "noisy", "single-operator", "sequential", "raw-multicoil")
    scenarios = {"multicoil": {"n_coils": 128}, **dict.fromkeys(others)}
    config = _config(data={"image_size": [4096, 4096]}, scenarios=scenarios)
    with pytest.raises(ConfigError) as raised:
        check_config(config)
    message = str(raised.value)
    assert message.startswith("resources.max_mem_mb: a simulate job of scenario 'multicoil'")
    assert "scenarios.multicoil.n_coils 128" in message
    assert "over the maximum of 1,000,000 MB" in message
    config["resources"]["max_mem_mb"] = 10**8  # a node with 100 TB: the GPU is what is short
    with pytest.raises(ConfigError, match=r"^resources.max_gpu_mem_mb: a train job"):
        check_config(config)


def test_data_jobs_are_sized_from_the_data_they_hold() -> None:
    class Wildcards:
        scenario = "multicoil"

    small, large = _config(), _config(data={"image_size": [512, 512]})
    for rule in ("demo_data", "extract", "simulate"):
        fixed = small["resources"]["default"]["mem_mb"]
        demand = [job_resources(c, rule)["mem_mb"](Wildcards, 1) for c in (small, large)]
        assert fixed < demand[0] < demand[1], rule
    more_coils = _config(scenarios={"multicoil": {"n_coils": 32}})
    simulate = job_resources(more_coils, "simulate")["mem_mb"](Wildcards, 1)
    assert simulate > job_resources(small, "simulate")["mem_mb"](Wildcards, 1)
