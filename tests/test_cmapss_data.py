"""C-MAPSS loading: file errors, windows, targets, labels, split, no leakage; real subsets."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from gaba_control.cmapss import data as cm
from gaba_control.cmapss.data import (
    ENV_VAR,
    candidate_data_dirs,
    default_data_dir,
    health_labels,
    identify_conditions,
    load_subset,
    piecewise_rul,
    read_cmapss_file,
)

# ------------------------------------------------------------------ synthetic data
TRAIN_LENGTHS = (45, 50, 60, 70, 150, 200, 180, 90, 75, 130)
TEST_LENGTHS = (35, 20, 40, 31)
TEST_RUL = (10, 50, 130, 200)
CONDITIONS = ((0.0, 0.0, 100.0), (42.0, 0.84, 100.0), (25.0, 0.62, 60.0))


def _rows(lengths, rng, num_conditions):
    rows = []
    for unit, length in enumerate(lengths, start=1):
        for cycle in range(1, length + 1):
            cond = CONDITIONS[rng.integers(num_conditions)]
            settings = np.array(cond) + rng.normal(0, 1e-4, 3) * [1, 0.1, 0]
            sensors = rng.normal(10.0 * (1 + CONDITIONS.index(cond)), 1.0, 21)
            sensors[1] += cycle / length  # a degradation trend
            sensors[0] = 518.67  # constant
            sensors[4] = 14.62  # constant
            sensors[5] = 21.61 if rng.random() < 0.9 else 21.60  # two-level toggle
            rows.append([unit, cycle, *settings, *sensors])
    return np.array(rows)


def _write(path: Path, table: np.ndarray, compress: bool = True):
    text = "\n".join(" ".join(f"{v:.6g}" for v in row) + " " for row in table) + "\n"
    if compress:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)


def write_synthetic(directory: Path, subset="FD001", num_conditions=1, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    train = _rows(TRAIN_LENGTHS, rng, num_conditions)
    test = _rows(TEST_LENGTHS, rng, num_conditions)
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / f"train_{subset}.txt.gz", train)
    _write(directory / f"test_{subset}.txt.gz", test)
    _write(directory / f"RUL_{subset}.txt.gz", np.array(TEST_RUL, dtype=float)[:, None])
    return {"train": train, "test": test}


@pytest.fixture
def synthetic(tmp_path):
    tables = write_synthetic(tmp_path)
    return tmp_path, tables


# ---------------------------------------------------------------------- reading
def test_read_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_FD009"):
        read_cmapss_file(tmp_path / "train_FD009.txt.gz")


def test_read_wrong_column_count_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    good = " ".join(["1"] * 26)
    path.write_text(f"{good}\n{good}\n{' '.join(['1'] * 25)}\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 3: expected 26 columns, got 25"):
        read_cmapss_file(path)


def test_read_non_numeric_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt.gz"
    good = " ".join(["1"] * 26)
    with gzip.open(path, "wt") as handle:
        handle.write(f"{good}\n{good.replace('1', 'abc', 1)}\n")
    with pytest.raises(ValueError, match=r"bad\.txt\.gz, line 2: non-numeric value 'abc'"):
        read_cmapss_file(path)


def test_read_non_finite_and_empty(tmp_path):
    path = tmp_path / "nan.txt"
    path.write_text("\n" + " ".join(["1"] * 25 + ["nan"]) + "\n")
    with pytest.raises(ValueError, match="line 2: non-finite"):
        read_cmapss_file(path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="no data rows"):
        read_cmapss_file(empty)


def test_gzip_and_plain_read_the_same(tmp_path):
    table = np.arange(52, dtype=float).reshape(2, 26)
    _write(tmp_path / "a.txt.gz", table)
    _write(tmp_path / "b.txt", table, compress=False)
    assert_array_equal(
        read_cmapss_file(tmp_path / "a.txt.gz"), read_cmapss_file(tmp_path / "b.txt")
    )


def test_missing_subset_file_is_named(tmp_path):
    write_synthetic(tmp_path)
    (tmp_path / "RUL_FD001.txt.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"RUL_FD001\.txt\.gz"):
        load_subset("FD001", tmp_path)


# ------------------------------------------------------------------ locating data
def test_missing_data_dir_lists_what_was_tried(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        default_data_dir(missing)


def test_env_var_overrides(tmp_path, monkeypatch):
    write_synthetic(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert candidate_data_dirs() == [tmp_path]
    assert default_data_dir() == tmp_path
    assert load_subset("FD001").config["data_dir"] == str(tmp_path)
    # a set but wrong variable is an error naming it, not a silent fallback
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="typo"):
        default_data_dir()


def test_candidates_cover_package_and_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    candidates = candidate_data_dirs()
    repo = Path(cm.__file__).resolve().parents[2]
    assert repo.parent / "shared" / "data" / "cmapss" in candidates
    assert tmp_path.parent / "shared" / "data" / "cmapss" in candidates


# ------------------------------------------------------------ targets and labels
@pytest.mark.parametrize("cap", [50, 125, 130])
def test_piecewise_rul_caps(cap):
    rul = np.arange(300)
    out = piecewise_rul(rul, cap)
    assert out.max() == cap
    assert_array_equal(out[:cap], rul[:cap])


@pytest.mark.parametrize(("critical", "healthy"), [(30, 100), (20, 60), (10.5, 11)])
def test_health_labels_thresholds(critical, healthy):
    rul = np.array([0, critical - 1e-9, critical, healthy - 1e-9, healthy, 1000])
    assert health_labels(rul, (critical, healthy)).tolist() == [2, 2, 1, 1, 0, 0]


@pytest.mark.parametrize("bad", [(100, 30), (0, 10), (5,), (30, 30)])
def test_health_labels_bad_thresholds(bad):
    with pytest.raises(ValueError, match="health_thresholds"):
        health_labels(np.zeros(3), bad)


# ----------------------------------------------------------------- synthetic subset
def test_shapes_windows_and_split(synthetic):
    directory, _ = synthetic
    d = load_subset("FD001", directory, window=30, val_fraction=0.2, seed=3)
    lengths = dict(enumerate(TRAIN_LENGTHS, start=1))
    assert len(d.val_units) == 2 and not set(d.val_units) & set(d.train_units)
    assert sorted([*d.val_units, *d.train_units]) == list(lengths)
    assert d.x_train.shape == (sum(lengths[u] - 29 for u in d.train_units), d.num_channels, 30)
    assert d.x_val.shape[0] == sum(lengths[u] - 29 for u in d.val_units)
    assert d.x_test.shape == (len(TEST_LENGTHS), d.num_channels, 30)
    assert d.x_train.dtype == d.rul_train.dtype == torch.float32
    assert d.health_train.dtype == torch.int64


def test_constant_and_toggling_channels_are_dropped(synthetic):
    directory, _ = synthetic
    assert load_subset("FD001", directory).dropped_channels == ("s1", "s5", "s6")
    # max_levels=1 keeps the two-level toggle s6
    assert load_subset("FD001", directory, max_levels=1).dropped_channels == ("s1", "s5")


def test_rul_targets_and_labels_per_unit(synthetic):
    directory, _ = synthetic
    d = load_subset("FD001", directory, val_fraction=0.0, rul_cap=125, health_thresholds=(30, 100))
    # unit 5 is 150 cycles long: windows end at cycles 30..150, RUL 120..0
    offset = sum(n - 29 for n in TRAIN_LENGTHS[:4])
    true = 150 - np.arange(30, 151)
    assert_array_equal(d.rul_train[offset : offset + 121].numpy(), np.minimum(true, 125))
    assert_array_equal(d.health_train[offset : offset + 121].numpy(), health_labels(true))
    # unit 6 (200 cycles) starts above the cap
    assert d.rul_train[offset + 121].item() == 125.0
    assert d.rul_train.max().item() == 125.0


def test_test_targets_and_padding(synthetic):
    directory, _ = synthetic
    d = load_subset("FD001", directory, val_fraction=0.0)
    assert d.padded_test_units == (2,)  # 20 cycles < 30
    assert_array_equal(d.rul_test_uncapped.numpy(), TEST_RUL)
    assert_array_equal(d.rul_test.numpy(), np.minimum(TEST_RUL, 125))
    assert_array_equal(d.health_test.numpy(), [2, 1, 0, 0])
    padded = d.x_test[1].numpy()  # (channels, window): 10 copies of cycle 1, then cycles 1..20
    assert_array_equal(padded[:, :11], np.repeat(padded[:, 10:11], 11, axis=1))
    assert not np.array_equal(padded[:, 10], padded[:, 11])
    # the unpadded last window is the last 30 normalised rows of unit 1
    keep = [int(c[1:]) - 1 for c in d.channels]
    test = read_cmapss_file(directory / "test_FD001.txt.gz")  # as written (6 digits)
    unit1 = test[test[:, 0] == 1][-30:, 5:][:, keep]
    assert_allclose(d.x_test[0].numpy().T, (unit1 - d.mean[0]) / d.std[0], rtol=1e-5, atol=1e-5)


def test_no_leakage_from_validation_or_test(tmp_path):
    tables = write_synthetic(tmp_path / "a")
    reference = load_subset("FD001", tmp_path / "a", seed=1)
    # The same training-split rows, but wild validation and test sensors.
    train, test = tables["train"].copy(), tables["test"].copy()
    is_val = np.isin(train[:, 0], reference.val_units)
    train[is_val, 5:] = train[is_val, 5:] * 1000 + 7
    test[:, 5:] = test[:, 5:] * 1000 + 7
    (tmp_path / "b").mkdir()
    _write(tmp_path / "b" / "train_FD001.txt.gz", train)
    _write(tmp_path / "b" / "test_FD001.txt.gz", test)
    _write(tmp_path / "b" / "RUL_FD001.txt.gz", np.array(TEST_RUL, dtype=float)[:, None])
    changed = load_subset("FD001", tmp_path / "b", seed=1)
    assert_array_equal(changed.mean, reference.mean)
    assert_array_equal(changed.std, reference.std)
    assert_array_equal(changed.x_train.numpy(), reference.x_train.numpy())
    # and the statistics are those of the training-split rows
    keep = [int(c[1:]) - 1 for c in reference.channels]
    written = read_cmapss_file(tmp_path / "a" / "train_FD001.txt.gz")
    fit = written[~np.isin(written[:, 0], reference.val_units)][:, 5:][:, keep]
    assert_allclose(reference.mean[0], fit.mean(axis=0), rtol=1e-12)
    assert_allclose(reference.std[0], fit.std(axis=0), rtol=1e-12)


def test_split_is_seeded(synthetic):
    directory, _ = synthetic
    a, b = load_subset("FD001", directory, seed=5), load_subset("FD001", directory, seed=5)
    assert_array_equal(a.val_units, b.val_units)
    others = {tuple(load_subset("FD001", directory, seed=s).val_units) for s in range(6)}
    assert len(others) > 1


def test_per_condition_normalisation(tmp_path):
    write_synthetic(tmp_path, num_conditions=3)
    d = load_subset("FD001", tmp_path, val_fraction=0.0)
    assert len(d.conditions) == 3 and d.mean.shape == (3, d.num_channels)
    assert d.config["per_condition"] is True
    # means ~10, 20, 30 per condition for the noise channels: per-condition stats differ
    assert np.ptp(d.mean[:, -1]) > 15
    pooled = load_subset("FD001", tmp_path, val_fraction=0.0, per_condition=False)
    assert pooled.mean.shape == (1, pooled.num_channels)


def test_unknown_test_condition_raises():
    train = np.array([[0.0, 0.0, 100.0], [42.0, 0.84, 100.0]])
    with pytest.raises(ValueError, match="match no training operating condition"):
        identify_conditions(train, np.array([[20.0, 0.7, 100.0]]))


def test_argument_errors(synthetic):
    directory, _ = synthetic
    with pytest.raises(ValueError, match="subset must be one of"):
        load_subset("FD005", directory)
    with pytest.raises(ValueError, match="val_fraction"):
        load_subset("FD001", directory, val_fraction=1.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        load_subset("FD001", directory, windows=30)
    with pytest.raises(ValueError, match="window"):
        load_subset("FD001", directory, window=0)


# -------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_dir():
    try:
        return default_data_dir()
    except FileNotFoundError as error:
        pytest.skip(f"C-MAPSS data absent: {error}")


@pytest.mark.cmapss
def test_fd001_real_shapes_and_channels(real_dir):
    d = load_subset("FD001", real_dir)
    # the 14 informative sensors usually used for FD001
    assert d.channels == (
        "s2",
        "s3",
        "s4",
        "s7",
        "s8",
        "s9",
        "s11",
        "s12",
        "s13",
        "s14",
        "s15",
        "s17",
        "s20",
        "s21",
    )
    assert d.x_train.shape[1:] == (14, 30) and d.x_test.shape == (100, 14, 30)
    assert len(d.train_units) + len(d.val_units) == 100 and len(d.val_units) == 20
    assert d.rul_train.max().item() == 125.0 and d.rul_train.min().item() == 0.0
    assert d.padded_test_units == ()


@pytest.mark.cmapss
@pytest.mark.parametrize("subset", ["FD002", "FD004"])
def test_six_conditions_well_separated(real_dir, subset):
    raw = read_cmapss_file(real_dir / f"train_{subset}.txt.gz")
    centers, (labels,) = identify_conditions(raw[:, 2:5])
    assert len(centers) == 6
    # tight clusters (spread ≤ 0.01 altitude, ≤ 0.002 Mach, 0 TRA), far apart (> 1 somewhere)
    for c in range(6):
        spread = np.ptp(raw[labels == c, 2:5], axis=0)
        assert np.all(spread <= [0.0101, 0.0021, 0.0]), spread
    gaps = np.abs(centers[:, None] - centers[None]).max(axis=-1)
    assert gaps[~np.eye(6, dtype=bool)].min() > 1
    d = load_subset(subset, real_dir)
    assert d.mean.shape[0] == 6 and len(d.padded_test_units) > 0


def test_corrupted_files_are_errors_that_name_them(tmp_path):
    from gaba_control.cmapss.data import read_cmapss_file

    good = tmp_path / "train_FD001.txt.gz"
    with gzip.open(good, "wt") as handle:
        for i in range(200):
            handle.write(" ".join(["1", str(i + 1)] + ["0.5"] * 24) + "\n")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.txt.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.txt\.gz: truncated or corrupted gzip"):
        read_cmapss_file(truncated)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.txt: no data rows"):
        read_cmapss_file(empty)


def test_nonsense_values_are_refused(tmp_path):
    from gaba_control.cmapss.data import _check_counts

    with pytest.raises(ValueError, match=r"data row 2: the unit id must be a whole number"):
        _check_counts(np.array([1.0, 1.5]), tmp_path / "x", "the unit id", minimum=1)
    with pytest.raises(ValueError, match=r"data row 1: RUL must be a whole number >= 0"):
        _check_counts(np.array([-3.0]), tmp_path / "x", "RUL", minimum=0)
