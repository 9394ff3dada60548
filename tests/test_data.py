"""Tests of genmodels.data: image loading, views, splits, batching, toy mixtures, Stacked MNIST."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import pytest
import torch
from conftest import DATA_ROOT as _DATA_ROOT
from conftest import tiny_config
from scipy.stats import chisquare
from torchvision import datasets

from genmodels.data import (
    DEFAULT_DATA_ROOT,
    DataNotFoundError,
    GaussianMixture2D,
    TensorBatches,
    binarize,
    grid_means,
    load_images,
    mode_index,
    resolve_data_root,
    ring_means,
    stacked_mnist,
    static_binarize,
    to_symmetric,
    to_unit,
    train_val_split,
)

DATA_ROOT = Path(_DATA_ROOT)
RAW_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
needs_data = pytest.mark.usefixtures("data_root")  # fails, not skips, without the data


@pytest.fixture(scope="module")
def mnist():
    return load_images("mnist", "train", root=DATA_ROOT)


# ---------------------------------------------------------------- images


@needs_data
@pytest.mark.parametrize("split, n, first", [("train", 60000, 5), ("test", 10000, 7)])
def test_mnist_split(split, n, first):
    s = load_images("mnist", split, root=DATA_ROOT)
    assert len(s) == n
    assert s.images.shape == (n, 1, 28, 28) and s.images.dtype == torch.uint8
    assert s.labels.shape == (n,) and s.labels.dtype == torch.int64
    counts = torch.bincount(s.labels, minlength=10)
    assert len(counts) == 10 and counts.sum() == n and counts.min() > n * 0.08
    assert s.labels[0] == first
    assert s.images.max() == 255 and s.images.min() == 0


@needs_data
@pytest.mark.parametrize("split, n", [("train", 60000), ("test", 10000)])
def test_fashion_split(split, n):
    s = load_images("fashion", split, root=DATA_ROOT)
    assert s.images.shape == (n, 1, 28, 28) and s.images.dtype == torch.uint8
    assert s.labels[0] == 9  # ankle boot
    assert torch.equal(torch.bincount(s.labels), torch.full((10,), n // 10))  # balanced classes


@needs_data
def test_load_is_cached(mnist):
    again = load_images("mnist", "train", root=str(DATA_ROOT) + "/")
    assert again is mnist


def test_bad_name_and_split():
    with pytest.raises(ValueError, match="mnist, fashion"):
        load_images("cifar")
    with pytest.raises(ValueError, match="train, test"):
        load_images("mnist", "val")


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion", "FashionMNIST")])
def test_missing_data_error(tmp_path, name, folder):
    with pytest.raises(DataNotFoundError) as info:
        load_images(name, root=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / folder / "raw") in msg
    assert all(f in msg for f in RAW_FILES)
    assert "GENMODELS_DATA" in msg and "--data-root" in msg and "download" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_failed_download_error(tmp_path, monkeypatch):
    def offline(self):
        raise RuntimeError("no route to host")

    monkeypatch.setattr(datasets.MNIST, "download", offline)  # simulated: no network is used
    attempt_download = True
    with pytest.raises(DataNotFoundError, match="no route to host") as info:
        load_images("mnist", root=tmp_path, download=attempt_download)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert str(tmp_path / "MNIST" / "raw") in str(info.value)


def test_resolve_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("GENMODELS_DATA", raising=False)
    assert resolve_data_root() == DEFAULT_DATA_ROOT
    assert DEFAULT_DATA_ROOT == Path.home() / ".cache" / "genmodels" / "data"
    monkeypatch.setenv("GENMODELS_DATA", "")
    assert resolve_data_root(None) == DEFAULT_DATA_ROOT
    monkeypatch.setenv("GENMODELS_DATA", str(tmp_path / "env"))
    assert resolve_data_root() == tmp_path / "env"
    assert resolve_data_root("") == tmp_path / "env"
    assert resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_root("~/x") == Path.home() / "x"


# ---------------------------------------------------------------- views and splits


def test_views():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8)
    u = to_unit(x)
    assert u.dtype == torch.float32 and torch.allclose(u, torch.tensor([0.0, 0.2, 1.0]))
    assert torch.allclose(to_unit(u), u)
    assert torch.allclose(to_symmetric(x), torch.tensor([-1.0, -0.6, 1.0]))
    assert torch.allclose(to_symmetric(u), to_symmetric(x))


@needs_data
def test_static_binarize(mnist):
    x = mnist.images[:2000]
    torch.manual_seed(1)
    a = static_binarize(x, seed=3)
    torch.manual_seed(2)
    b = static_binarize(x, seed=3)
    c = static_binarize(x, seed=4)
    assert a.dtype == torch.float32 and a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) == {0.0, 1.0}
    assert abs(a.mean().item() - to_unit(x).mean().item()) < 0.005


@needs_data
def test_dynamic_binarize(mnist):
    x = to_unit(mnist.images[:2000])
    a, b = binarize(x), binarize(x)
    assert not torch.equal(a, b)
    assert set(a.unique().tolist()) == {0.0, 1.0}
    # 1.57M pixels: the mean's standard error is below 0.0004
    assert abs(a.mean().item() - x.mean().item()) < 0.003
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(binarize(mnist.images[:10], g1), binarize(mnist.images[:10], g2))


def test_train_val_split():
    torch.manual_seed(1)
    train, val = train_val_split(60000)
    torch.manual_seed(2)
    train2, val2 = train_val_split(60000)
    assert len(train) == 55000 and len(val) == 5000
    assert torch.equal(torch.cat([train, val]).sort().values, torch.arange(60000))
    assert torch.equal(train, train2) and torch.equal(val, val2)
    assert not torch.equal(val, train_val_split(60000, seed=1)[1])
    with pytest.raises(ValueError):
        train_val_split(10, n_val=10)


# ---------------------------------------------------------------- TensorBatches


def noisy(x, g):
    return x.float() + torch.rand(x.shape, generator=g)


def epoch_batches(batches):
    return [tuple(t.clone() for t in b) for b in batches]


def test_batches_cover_every_index_once():
    idx = torch.arange(103)
    b = TensorBatches([idx, idx * 2], batch_size=10, drop_last=False)
    assert len(b) == 11
    out = list(b)
    assert [len(x) for x, _ in out] == [10] * 10 + [3]
    assert all(torch.equal(y, 2 * x) for x, y in out)
    assert torch.equal(torch.cat([x for x, _ in out]).sort().values, idx)
    assert b.epoch == 1 and b.state_dict() == {"epoch": 1, "position": 0}


def test_batches_drop_last():
    b = TensorBatches([torch.arange(103)], batch_size=10)
    out = torch.cat([x for (x,) in b])
    assert len(b) == 10 and len(out) == 100 and len(out.unique()) == 100


def test_batches_epochs_differ_and_seed_ignores_global_rng():
    data = [torch.arange(50)]
    torch.manual_seed(1)
    b1 = TensorBatches(data, batch_size=5, transform=noisy, seed=7)
    e0, e1 = epoch_batches(b1), epoch_batches(b1)
    assert not torch.equal(torch.cat([x for (x,) in e0]), torch.cat([x for (x,) in e1]))
    torch.manual_seed(2)
    b2 = TensorBatches(data, batch_size=5, transform=noisy, seed=7)
    f0, f1 = epoch_batches(b2), epoch_batches(b2)
    assert all(torch.equal(x, y) for (x,), (y,) in zip(e0 + e1, f0 + f1, strict=True))
    b3 = TensorBatches(data, batch_size=5, seed=8)
    assert not torch.equal(torch.cat([x for (x,) in b3]), torch.cat([x.floor() for (x,) in e0]))
    unshuffled = torch.cat([x for (x,) in TensorBatches(data, batch_size=5, shuffle=False)])
    assert torch.equal(unshuffled, data[0])


def test_batches_set_epoch():
    data = [torch.arange(40)]
    b = TensorBatches(data, batch_size=8)
    list(b)
    second = epoch_batches(b)
    b.set_epoch(1)
    assert all(torch.equal(x, y) for (x,), (y,) in zip(epoch_batches(b), second, strict=True))


@pytest.mark.parametrize("drop_last", [True, False])
def test_rank_slices_rebuild_global_batch(drop_last):
    x, y = torch.arange(70).reshape(35, 2), torch.arange(35)
    ref = TensorBatches([x, y], batch_size=8, transform=noisy, drop_last=drop_last, seed=3)
    ranks = [TensorBatches([x, y], batch_size=8, transform=noisy, drop_last=drop_last, seed=3,
                           rank=r, world_size=2) for r in range(2)]
    for _ in range(2):  # two epochs
        got = list(zip(*ranks, strict=True))
        want = list(ref)
        assert len(got) == len(want) == len(ref)
        for (r0, r1), full in zip(got, want, strict=True):
            if len(full[0]) == 8:
                assert len(r0[0]) == len(r1[0]) == 4
            for a, b, f in zip(r0, r1, full, strict=True):
                assert torch.equal(torch.cat([a, b]), f)


def test_rank_needs_divisible_batch():
    with pytest.raises(ValueError, match="divisible"):
        TensorBatches([torch.arange(10)], batch_size=10, world_size=3, rank=0)
    with pytest.raises(ValueError, match="rank"):
        TensorBatches([torch.arange(10)], batch_size=4, world_size=2, rank=2)
    with pytest.raises(ValueError, match="first dimension"):
        TensorBatches([torch.arange(10), torch.arange(9)], batch_size=2)


@pytest.mark.parametrize("stop", [0, 3, 7])
def test_resume_mid_epoch(stop):
    data = [torch.arange(45), torch.arange(45) * 10]
    ref = TensorBatches(data, batch_size=6, transform=noisy, seed=5)
    list(ref)  # start in epoch 1
    it = iter(ref)
    seen = [next(it) for _ in range(stop)]
    state = ref.state_dict()
    rest = epoch_batches(it) + epoch_batches(ref)  # rest of epoch 1, then epoch 2
    assert len(seen) + len(rest) == 2 * len(ref)

    torch.manual_seed(123)
    resumed = TensorBatches(data, batch_size=6, transform=noisy, seed=5)
    resumed.load_state_dict(state)
    again = epoch_batches(resumed)
    if stop == len(ref):  # the saved state already points at the next epoch
        assert state == {"epoch": 2, "position": 0}
    else:
        again += epoch_batches(resumed)
    for a, b in zip(again, rest, strict=True):
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_state_after_last_batch_points_to_next_epoch():
    b = TensorBatches([torch.arange(12)], batch_size=4)
    it = iter(b)
    for _ in range(3):
        next(it)
    assert b.state_dict() == {"epoch": 1, "position": 0}
    resumed = TensorBatches([torch.arange(12)], batch_size=4)
    resumed.load_state_dict(b.state_dict())
    assert len(list(resumed)) == 3 and resumed.epoch == 2


def test_batches_to_device():
    b = TensorBatches([torch.arange(10)], batch_size=5)
    assert b.to("cpu") is b and b.device == torch.device("cpu")


# ---------------------------------------------------------------- toy mixtures


def test_ring_means():
    m = ring_means()
    assert m.shape == (8, 2) and m.dtype == torch.float32
    assert torch.allclose(m.norm(dim=1), torch.ones(8))
    d = torch.cdist(m, m) + torch.eye(8) * 10
    assert math.isclose(d.min().item(), 2 * math.sin(math.pi / 8), rel_tol=1e-5)
    assert torch.allclose(m[2], torch.tensor([0.0, 1.0]), atol=1e-6)


def test_grid_means():
    m = grid_means()
    assert m.shape == (25, 2)
    assert {tuple(p) for p in m.tolist()} == {(x, y) for x in range(-4, 5, 2)
                                              for y in range(-4, 5, 2)}


@pytest.mark.parametrize("mix, std, modes", [(GaussianMixture2D.ring(), 0.01, 8),
                                             (GaussianMixture2D.grid(), 0.05, 25)])
def test_mixture_sample(mix, std, modes):
    assert mix.n_modes == modes and mix.std == std
    x, y = mix.sample(50_000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (50_000, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    counts = torch.bincount(y, minlength=modes)
    assert chisquare(counts.numpy()).pvalue > 1e-3
    residual = x - mix.means[y]
    assert torch.allclose(residual.std(dim=0), torch.full((2,), std), rtol=0.03)
    for k in range(modes):  # per mode: ~2000-6000 points, std error of std about 1.6%
        assert torch.allclose(residual[y == k].std(dim=0), torch.full((2,), std), rtol=0.08)
    labels, dist = mix.nearest_mode(x)
    assert torch.equal(labels, y)
    assert torch.allclose(dist, residual.norm(dim=1), atol=1e-5)


def test_mixture_sample_seeded():
    mix = GaussianMixture2D.ring()
    a = mix.sample(100, generator=torch.Generator().manual_seed(1))
    b = mix.sample(100, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------- Stacked MNIST


def test_mode_index():
    t = torch.tensor([[9, 9, 9], [0, 0, 0], [1, 2, 3], [0, 5, 0]])
    assert mode_index(t).tolist() == [999, 0, 123, 50]


@needs_data
def test_stacked_mnist(mnist):
    torch.manual_seed(0)
    x, t = stacked_mnist(mnist.images, mnist.labels, 200, seed=1)
    torch.manual_seed(1)
    x2, t2 = stacked_mnist(mnist.images, mnist.labels, 200, seed=1)
    assert x.shape == (200, 3, 28, 28) and x.dtype == torch.uint8
    assert t.shape == (200, 3) and t.dtype == torch.int64
    assert torch.equal(x, x2) and torch.equal(t, t2)
    assert not torch.equal(t, stacked_mnist(mnist.images, mnist.labels, 200, seed=2)[1])
    rows = mnist.images.reshape(len(mnist), -1).numpy()
    labels_of: dict[bytes, set[int]] = {}
    for row, label in zip(rows, mnist.labels.tolist(), strict=True):
        labels_of.setdefault(row.tobytes(), set()).add(label)
    for img, triple in zip(x, t.tolist(), strict=True):
        for c in range(3):
            assert triple[c] in labels_of[img[c].numpy().tobytes()]
    assert not all(torch.equal(img[0], img[1]) for img in x)  # channels drawn independently


@needs_data
def test_stacked_mnist_covers_1000_modes(mnist):
    _, t = stacked_mnist(mnist.images, mnist.labels, 30_000, seed=0)
    modes = mode_index(t)
    assert modes.min() >= 0 and modes.max() < 1000
    assert len(modes.unique()) == 1000


# ---------------------------------------------------------------- held-out binarisation


def _eval_images(data_config, eval_batch_size):
    from genmodels.data.build import build_data

    config = dataclasses.replace(data_config, eval_batch_size=eval_batch_size)
    data = build_data(config, 32, root=DATA_ROOT, seed=0)
    return torch.cat([batch[0] for batch in data.eval]), data


@needs_data
def test_held_out_binarisation_ignores_eval_batch_size():
    """The Trainer's eval batches (data.eval_batch_size, 1000 by default) and `genmodels
    evaluate` (batches of 100, first n images) score one and the same binarised test set."""
    from genmodels.pipelines.run_evaluation import held_out_numbers

    config = tiny_config(data={"view": "dynamic_binary"})
    full, data = _eval_images(config.data, 1000)
    assert full.shape == (10_000, 1, 28, 28) and set(full.unique().tolist()) == {0.0, 1.0}
    for batch_size in (100, 7):
        assert torch.equal(_eval_images(config.data, batch_size)[0], full), batch_size

    class Capture:  # stands in for a model: keeps the images evaluate() is given
        def __init__(self, run_config):
            self.run_config, self.config = run_config, object()

        def evaluate(self, batches):
            self.images = torch.cat([batch[0] for batch in batches])
            return {}

    model = Capture(config)
    held_out_numbers(model, n=250, batch_size=7, data_root=str(DATA_ROOT))
    assert torch.equal(model.images, full[:250])  # a prefix gets the full set's draws
    # the training stream is untouched: the same per-batch dynamic draws as before
    expected = TensorBatches(data.train.tensors, 32, seed=0,
                             transform=lambda x, g: binarize(to_unit(x), g))
    for (x, y), (x0, y0) in zip(data.train, expected, strict=True):
        assert torch.equal(x, x0) and torch.equal(y, y0)


@needs_data
def test_held_out_binarize_per_image(mnist):
    from genmodels.data import held_out_binarize

    x = mnist.images[:3000]
    torch.manual_seed(1)
    a = held_out_binarize(x)
    torch.manual_seed(2)
    assert torch.equal(held_out_binarize(x), a)  # the global RNG plays no part
    assert a.dtype == torch.float32 and a.shape == x.shape
    assert set(a.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(held_out_binarize(x[:10]), a[:10])  # prefixes
    assert torch.equal(held_out_binarize(x[1234:2000], start=1234), a[1234:2000])  # any slice
    assert not torch.equal(held_out_binarize(x, seed=1), a)
    assert torch.equal(a[x == 0], torch.zeros(int((x == 0).sum())))
    assert torch.equal(a[x == 255], torch.ones(int((x == 255).sum())))
    # 2.35M pixels: the mean's standard error is below 0.0003
    assert abs(a.mean().item() - to_unit(x).mean().item()) < 0.002
    grey = held_out_binarize(torch.full((2000, 1, 28, 28), 64, dtype=torch.uint8))
    flat = grey.reshape(2000, -1)
    assert abs(flat.mean().item() - 64 / 255) < 0.002
    for u, v in ((flat[:, :-1], flat[:, 1:]), (flat[:-1], flat[1:])):  # pixels, images
        assert abs(torch.corrcoef(torch.stack([u.flatten(), v.flatten()]))[0, 1].item()) < 0.005
    with pytest.raises(TypeError, match="uint8"):
        held_out_binarize(to_unit(x[:2]))


# ---------------------------------------------------------------- corrupt files, SHA256SUMS


def _data_copy(root: Path, copy: tuple[str, ...] = (), sums: bool = True) -> Path:
    """A data root under ``root`` whose MNIST files link to the shared ones, except those in
    ``copy`` (real copies, free to damage); with the shared SHA256SUMS if ``sums``."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        source = DATA_ROOT / "MNIST" / "raw" / name
        if name in copy:
            (raw / name).write_bytes(source.read_bytes())
        else:
            (raw / name).symlink_to(source.resolve())
    if sums:
        (root / "SHA256SUMS").write_text((DATA_ROOT / "SHA256SUMS").read_text())
    return raw


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Checksum stamps go to a fresh cache folder, never the user's."""
    monkeypatch.setenv("GENMODELS_CACHE", str(tmp_path / "user-cache"))


@needs_data
def test_truncated_file_is_one_clear_error(tmp_path, capsys):
    from genmodels.cli import main
    from genmodels.data import DataCorruptError
    from genmodels.errors import UserError

    raw = _data_copy(tmp_path / "root")
    path = raw / "train-images-idx3-ubyte"
    path.unlink()
    with open(DATA_ROOT / "MNIST" / "raw" / path.name, "rb") as f:
        path.write_bytes(f.read(1_000_016))  # a copy cut short
    with pytest.raises(DataCorruptError) as info:
        load_images("mnist", "train", root=tmp_path / "root")
    assert isinstance(info.value, ValueError) and isinstance(info.value, UserError)
    assert info.value.path == path
    msg = str(info.value)
    assert str(path) in msg and "1000016 bytes" in msg and "47040016" in msg
    assert "truncated" in msg and "copy" in msg and "download" in msg
    assert "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db" in msg  # the line
    assert "SHA256SUMS" in msg
    assert main(["train", "configs/mnist_mlp.toml", "--data-root", str(tmp_path / "root"),
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(path) in err


@needs_data
def test_wrong_magic_is_one_clear_error(tmp_path):
    from genmodels.data import DataCorruptError

    raw = _data_copy(tmp_path / "root", copy=("t10k-images-idx3-ubyte",), sums=False)
    path = raw / "t10k-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[:4] = b"\x1f\x8b\x08\x08"  # a .gz archive under the raw file's name
    path.write_bytes(bytes(data))
    with pytest.raises(DataCorruptError, match="magic") as info:
        load_images("mnist", "test", root=tmp_path / "root")
    msg = str(info.value)
    assert str(path) in msg and "0x00000803" in msg and "gzip" in msg


@needs_data
def test_checksum_mismatch_names_the_file(tmp_path):
    from genmodels.data import DataCorruptError

    raw = _data_copy(tmp_path / "root", copy=("t10k-labels-idx1-ubyte",))
    path = raw / "t10k-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    data[8] = (data[8] + 1) % 10  # one label changed: size and header still fine
    path.write_bytes(bytes(data))
    with pytest.raises(DataCorruptError, match="SHA256SUMS") as info:
        load_images("mnist", "test", root=tmp_path / "root")
    msg = str(info.value)
    assert str(path) in msg
    assert "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2" in msg  # expected
    assert "copy" in msg and "sha256sum -c SHA256SUMS" in msg
    with pytest.raises(DataCorruptError):  # a failed check is never cached
        load_images("mnist", "test", root=tmp_path / "root")


@needs_data
def test_checksums_verified_once_per_root(tmp_path, monkeypatch):
    from genmodels.data import images

    calls = []
    sha256 = images.sha256

    def counted(path):
        calls.append(Path(path).name)
        return sha256(path)

    monkeypatch.setattr(images, "sha256", counted)
    root = tmp_path / "root"
    raw = _data_copy(root, copy=("t10k-labels-idx1-ubyte",))
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    first = load_images("mnist", "test", root=root)
    assert sorted(calls) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    assert torch.equal(first.images, load_images("mnist", "test", root=DATA_ROOT).images)
    monkeypatch.setattr(images, "_CACHE", {})  # a later process: nothing in memory
    load_images("mnist", "test", root=root)
    assert len(calls) == 2  # the stamp in the cache folder stands for the check
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # root untouched
    assert list((tmp_path / "user-cache").rglob("*.json"))
    stat = (raw / "t10k-labels-idx1-ubyte").stat()
    os.utime(raw / "t10k-labels-idx1-ubyte", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    monkeypatch.setattr(images, "_CACHE", {})
    load_images("mnist", "test", root=root)
    assert calls[2:] == ["t10k-labels-idx1-ubyte"]  # only the file that changed


@needs_data
def test_root_without_sha256sums_loads_as_before(tmp_path, monkeypatch):
    from genmodels.data import images

    calls = []
    monkeypatch.setattr(images, "sha256", lambda path: calls.append(path))
    _data_copy(tmp_path / "root", sums=False)
    test = load_images("mnist", "test", root=tmp_path / "root")
    assert torch.equal(test.images, load_images("mnist", "test", root=DATA_ROOT).images)
    assert calls == []
