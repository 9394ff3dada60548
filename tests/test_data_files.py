"""Your own images: folders of PNG/JPEG files, array files, tensors (genmodels.data.files)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_identical, metric_lines, tiny_config
from PIL import Image

from genmodels.config import ConfigError, DataConfig, config_from_dict
from genmodels.data import (
    RunData,
    build_data,
    cache_dir,
    convert_channels,
    data_shape,
    from_tensors,
    load_array,
    load_folder,
    load_images,
    resize_images,
    train_val_split,
)
from genmodels.data import files as files_module
from genmodels.data.build import dataset_tensors
from genmodels.errors import InputError

RNG = np.random.default_rng(0)


def _png(path: Path, array: np.ndarray) -> np.ndarray:
    """Write uint8 (H, W) or (H, W, 3) as a PNG (lossless); returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def _rgb(h: int = 48, w: int = 48) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _grey(h: int = 8, w: int = 8) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def _chw(array: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(array)
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1)


def _folder_config(path: Path, **values) -> DataConfig:
    return DataConfig(name="folder", path=str(path), **values)


# ---------------------------------------------------------------- folders


def test_folder_with_class_subfolders(tmp_path):
    """Labels = rank of the class folder's name; images ordered by file name over the whole
    tree (ties by class), nested folders included, other and hidden files ignored."""
    layout = ["dog/000.png", "ant/001.png", "cat/002.png", "cat/003.png", "ant/003.png",
              "cat/deeper/004.png"]
    arrays = {name: _png(tmp_path / name, _rgb()) for name in layout}
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / ".hidden.png").write_bytes(b"not an image either")
    order = ["dog/000.png", "ant/001.png", "cat/002.png", "ant/003.png", "cat/003.png",
             "cat/deeper/004.png"]
    stored = load_folder(tmp_path)
    assert stored.classes == ("ant", "cat", "dog")
    assert stored.images.dtype == torch.uint8 and stored.images.shape == (6, 3, 48, 48)
    assert torch.equal(stored.images, torch.stack([_chw(arrays[n]) for n in order]))
    assert stored.labels.tolist() == [2, 0, 1, 0, 1, 1]
    assert stored.test_images is None

    config = _folder_config(tmp_path)
    data = build_data(config, batch_size=2)
    assert isinstance(data, RunData) and data.shape == (3, 48, 48) == data_shape(config)
    train_idx, val_idx = train_val_split(6, 1, seed=0)  # 10 %, at least 1
    assert torch.equal(data.train.tensors[0], stored.images[train_idx])
    assert torch.equal(data.eval.tensors[1], stored.labels[val_idx])


def test_train_test_folders(tmp_path):
    """test/ is the held-out set, labelled by train/'s classes even where it lacks some."""
    train = [_png(tmp_path / "train" / c / f"{i:02d}.png", _grey()) for i, c in
             enumerate("abcab")]
    test = _png(tmp_path / "test" / "b" / "00.png", _grey())
    stored = load_folder(tmp_path)
    assert stored.classes == ("a", "b", "c") and stored.labels.tolist() == [0, 1, 2, 0, 1]
    assert torch.equal(stored.images, torch.stack([_chw(x) for x in train]))
    assert torch.equal(stored.test_images, _chw(test)[None]) and stored.test_labels.tolist() == [1]

    train_t, held_out = dataset_tensors(_folder_config(tmp_path))
    assert torch.equal(held_out[0], stored.test_images) and len(train_t[0]) == 5
    train_t, held_out = dataset_tensors(_folder_config(tmp_path, validation=True,
                                                       validation_size=2))
    train_idx, val_idx = train_val_split(5, 2, seed=0)
    assert torch.equal(held_out[0], stored.images[val_idx])
    assert torch.equal(train_t[1], stored.labels[train_idx])


def test_flat_folder_is_unlabelled(tmp_path):
    b = _png(tmp_path / "b.png", _rgb(16, 16))
    a = _png(tmp_path / "a.PNG", _rgb(16, 16))
    Image.fromarray(_rgb(16, 16)).save(tmp_path / "c.jpg", quality=95)
    stored = load_folder(tmp_path)
    assert stored.labels is None and stored.classes == () and stored.images.shape == (3, 3, 16, 16)
    assert torch.equal(stored.images[:2], torch.stack([_chw(a), _chw(b)]))
    data = build_data(_folder_config(tmp_path, validation_size=1), batch_size=2)
    assert len(data.train.tensors) == len(data.eval.tensors) == len(data.figure_batch) == 1
    (x,) = next(iter(data.train))
    assert x.shape == (2, 3, 16, 16) and x.dtype == torch.float32


# ---------------------------------------------------------------- array files


def test_npy_grey_uint8(tmp_path):
    x = RNG.integers(0, 256, (20, 32, 32), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    stored = load_array(tmp_path / "x.npy")
    assert stored.labels is None and torch.equal(stored.images, torch.from_numpy(x)[:, None])
    config = DataConfig(name="array", path=str(tmp_path / "x.npy"))
    assert data_shape(config) == (1, 32, 32)
    train, held_out = dataset_tensors(config)
    assert len(train) == 1 and len(train[0]) == 18 and len(held_out[0]) == 2


def test_npz_with_labels_and_test_keys(tmp_path):
    x, tx = (RNG.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8) for n in (10, 4))
    y, ty = np.arange(10) % 3, np.array([2, 1, 0, 0], dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=x, labels=y, test_images=tx, test_labels=ty)
    stored = load_array(tmp_path / "d.npz")
    assert torch.equal(stored.images, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert stored.labels.dtype == stored.test_labels.dtype == torch.int64
    assert stored.labels.tolist() == y.tolist() and stored.test_labels.tolist() == ty.tolist()
    train, held_out = dataset_tensors(DataConfig(name="array", path=str(tmp_path / "d.npz")))
    assert torch.equal(held_out[0], torch.from_numpy(tx).permute(0, 3, 1, 2))
    assert torch.equal(train[1], torch.from_numpy(y))


def test_pt_dict_and_tensor(tmp_path):
    x = torch.randint(0, 256, (6, 1, 12, 10), dtype=torch.uint8)
    torch.save({"images": x, "labels": torch.arange(6)}, tmp_path / "d.pt")
    torch.save(x.float() / 255, tmp_path / "t.pt")
    stored = load_array(tmp_path / "d.pt")
    assert torch.equal(stored.images, x) and stored.labels.tolist() == list(range(6))
    assert torch.equal(load_array(tmp_path / "t.pt").images, x)


def test_every_layout_gives_the_same_tensor(tmp_path):
    x = torch.randint(0, 256, (5, 3, 7, 9), dtype=torch.uint8)
    grey = x[:, :1]
    nhwc = x.permute(0, 2, 3, 1)
    variants = {"nchw.npy": x.numpy(), "nhwc.npy": nhwc.numpy(),
                "f32.npy": (x.float() / 255).numpy(), "f64.npy": (nhwc.double() / 255).numpy(),
                "f16.pt": x.half() / 255, "nhwc.pt": nhwc.contiguous()}
    for name, array in variants.items():
        if name.endswith(".npy"):
            np.save(tmp_path / name, array)
        else:
            torch.save(array, tmp_path / name)
        assert torch.equal(load_array(tmp_path / name).images, x), name
    for i, array in enumerate((grey[:, 0], grey, grey.permute(0, 2, 3, 1).float() / 255)):
        np.save(tmp_path / f"grey{i}.npy", array.numpy())
        assert torch.equal(load_array(tmp_path / f"grey{i}.npy").images, grey), i


# ---------------------------------------------------------------- size and channels


def test_resize_and_channel_conversion(tmp_path):
    rgb = torch.randint(0, 256, (4, 3, 48, 40), dtype=torch.uint8)
    expected = F.interpolate(rgb.float(), size=(24, 16), mode="bilinear", antialias=True,
                             align_corners=False).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(resize_images(rgb, [24, 16]), expected)
    up = resize_images(rgb, [64, 64])
    assert up.shape == (4, 3, 64, 64) and abs(up.float().mean() - rgb.float().mean()) < 1
    assert resize_images(rgb, [48, 40]) is rgb
    grey = convert_channels(rgb, 1)  # ITU-R 601-2 luma, bit for bit PIL's "L"
    pil = [np.asarray(Image.fromarray(im.permute(1, 2, 0).numpy()).convert("L")) for im in rgb]
    assert torch.equal(grey, torch.from_numpy(np.stack(pil))[:, None])
    assert torch.equal(convert_channels(grey, 3), grey.expand(-1, 3, -1, -1))

    for i, im in enumerate(rgb):  # a folder: converted, then resized, then cached so
        _png(tmp_path / f"{i}.png", im.permute(1, 2, 0).numpy())
    config = _folder_config(tmp_path, size=[24, 16], channels=1)
    assert data_shape(config) == (1, 24, 16)
    assert torch.equal(load_folder(tmp_path, [24, 16], 1).images, resize_images(grey, [24, 16]))


def test_size_and_channels_of_builtin_datasets(data_root):
    mnist = load_images("mnist", "train", data_root)
    train, held_out = dataset_tensors(DataConfig(), data_root)
    assert train[0] is mnist.images  # nothing set: the very same tensors as before
    config = DataConfig(subset=64, size=[32, 32], channels=3, validation=True,
                        validation_size=100)
    train, held_out = dataset_tensors(config, data_root)
    assert data_shape(config) == (3, 32, 32) and train[0].shape == (64, 3, 32, 32)
    train_idx, _ = train_val_split(60_000, 100, seed=0)
    expected = resize_images(mnist.images[train_idx[:64]], [32, 32]).expand(-1, 3, -1, -1)
    assert torch.equal(train[0], expected) and len(held_out[0]) == 100


def test_mixed_sizes_and_modes_are_converted_when_asked(tmp_path):
    big = _png(tmp_path / "a.png", _rgb(48, 48))
    small = _png(tmp_path / "b.png", _grey(32, 40))
    images = load_folder(tmp_path, size=[16, 16], channels=3).images
    assert images.shape == (2, 3, 16, 16)
    assert torch.equal(images[0], resize_images(_chw(big)[None], [16, 16])[0])
    assert torch.equal(images[1], resize_images(_chw(small)[None].expand(-1, 3, -1, -1),
                                                [16, 16])[0])


# ---------------------------------------------------------------- the decoded cache


def test_cache_is_outside_the_data_folder_and_refreshed(tmp_path, monkeypatch):
    monkeypatch.setenv("GENMODELS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "images"
    for name in ("0.png", "1.png"):
        _png(root / name, _grey())
    listing = sorted(root.rglob("*"))
    first = load_folder(root)
    assert sorted(root.rglob("*")) == listing  # nothing written into the data folder
    (cached,) = (cache_dir() / "decoded").iterdir()

    def no_decoding(path):
        raise AssertionError(f"decoded {path} again")

    files_module._CACHE.clear()
    with monkeypatch.context() as m:
        m.setattr(files_module, "_decode", no_decoding)
        assert torch.equal(load_folder(root).images, first.images)  # read from the cache file

    new = _png(root / "1.png", np.full((8, 8), 7, np.uint8))  # another size, another mtime
    os.utime(root / "1.png", ns=(1, 1))
    second = load_folder(root)  # the process cache notices too
    assert torch.equal(second.images[1, 0], torch.from_numpy(new))
    assert torch.equal(second.images[0], first.images[0])
    files_module._CACHE.clear()
    with monkeypatch.context() as m:
        m.setattr(files_module, "_decode", no_decoding)
        assert torch.equal(load_folder(root).images, second.images)
    assert list((cache_dir() / "decoded").iterdir()) == [cached]  # replaced, no temporary left


# ---------------------------------------------------------------- errors


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_folder_errors(tmp_path):
    message = _error(load_folder, tmp_path / "nowhere")
    assert "nowhere" in message and "does not exist" in message and "data.path" in message

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("")
    message = _error(load_folder, tmp_path / "empty")
    assert "holds no PNG or JPEG images" in message and "empty" in message

    _png(tmp_path / "sizes" / "a.png", _grey(8, 8))
    _png(tmp_path / "sizes" / "b.png", _grey(8, 6))
    message = _error(load_folder, tmp_path / "sizes")
    assert "a.png is 8 x 8" in message and "b.png is 8 x 6" in message
    assert "data.size=[H,W]" in message

    _png(tmp_path / "modes" / "a.png", _grey())
    _png(tmp_path / "modes" / "b.png", _rgb(8, 8))
    message = _error(load_folder, tmp_path / "modes")
    assert "a.png is grey" in message and "b.png is RGB" in message
    assert "data.channels=1" in message and "data.channels=3" in message

    _png(tmp_path / "broken" / "a.png", _grey())
    (tmp_path / "broken" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    message = _error(load_folder, tmp_path / "broken")
    assert "cannot decode" in message and str(tmp_path / "broken" / "b.png") in message

    _png(tmp_path / "both" / "a.png", _grey())
    _png(tmp_path / "both" / "cls" / "b.png", _grey())
    assert "class folder" in _error(load_folder, tmp_path / "both")

    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8), np.uint8))
    assert "data.name=array" in _error(load_folder, tmp_path / "x.npy")


@pytest.mark.parametrize("arrays, expected", [
    ({"images": np.zeros((4, 8, 8), np.uint8), "labels": np.arange(3)},
     ["labels", "shape (3,) for 4 images"]),
    ({"images": np.zeros((4, 8, 8), np.uint8), "labels": np.zeros(4, np.float32)},
     ["labels", "float32", "integer class indices"]),
    ({"images": np.zeros((4, 8, 8), np.uint8), "labels": np.array([0, 1, -1, 2])},
     ["negative labels (min -1)"]),
    ({"images": np.zeros((4, 3, 5, 3), np.uint8)}, ["(4, 3, 5, 3)", "accepted layouts"]),
    ({"images": np.zeros((4, 4, 8, 8), np.uint8)}, ["(4, 4, 8, 8)", "accepted layouts"]),
    ({"images": np.full((4, 8, 8), 1.5, np.float32)}, ["outside [0, 1]", "max 1.5"]),
    ({"images": np.zeros((4, 8, 8), np.int64)}, ["int64", "give uint8"]),
    ({"arr_0": np.zeros((4, 8, 8), np.uint8)}, ["arr_0", "needs 'images'"]),
    ({"images": np.zeros((4, 8, 8), np.uint8), "labels": np.arange(4),
      "test_images": np.zeros((2, 8, 8), np.uint8)}, ["labels", "test_labels", "neither"]),
    ({"images": np.zeros((4, 8, 8), np.uint8), "test_images": np.zeros((2, 9, 8), np.uint8)},
     ["1 x 9 x 8", "1 x 8 x 8", "data.size"]),
], ids=["count", "dtype", "negative", "ambiguous", "channels", "range", "int", "keys",
        "test-labels", "test-shape"])
def test_array_errors(tmp_path, arrays, expected):
    np.savez(tmp_path / "d.npz", **arrays)
    message = _error(load_array, tmp_path / "d.npz")
    assert str(tmp_path / "d.npz") in message
    for text in expected:
        assert text in message


def test_unreadable_array_files(tmp_path):
    (tmp_path / "x.npy").write_bytes(b"garbage")
    assert "cannot read" in _error(load_array, tmp_path / "x.npy")
    torch.save({"images": [1, 2]}, tmp_path / "list.pt")
    assert "is a list" in _error(load_array, tmp_path / "list.pt")
    torch.save({"images": np.zeros((2, 8, 8), np.uint8)}, tmp_path / "numpy.pt")
    assert "weights_only" in _error(load_array, tmp_path / "numpy.pt")
    (tmp_path / "x.csv").write_text("1,2")
    assert "not a .npy, .npz or .pt file" in _error(load_array, tmp_path / "x.csv")


def test_config_checks():
    with pytest.raises(ConfigError, match="set data.path"):
        DataConfig(name="folder")
    with pytest.raises(ConfigError, match="only read with data.name = folder or array"):
        DataConfig(path="images/")
    with pytest.raises(ConfigError, match=r"two positive integers \[H, W\]"):
        DataConfig(size=[32])
    with pytest.raises(ConfigError, match="data.channels = 2"):
        DataConfig(channels=2)
    with pytest.raises(ConfigError, match="data.validation_size = -1"):
        DataConfig(validation_size=-1)
    with pytest.raises(ConfigError, match="only read with data.validation = true"):
        DataConfig(validation_size=1000)
    assert DataConfig(name="array", path="x.npy", size=[16, 24], channels=3).size == [16, 24]
    with pytest.raises(ConfigError, match="held-out set is the stored test images"):
        from_tensors(torch.zeros(8, 4, 4), held_out=torch.zeros(2, 4, 4), validation_size=2)
    with pytest.raises(ConfigError, match="holding out 8 of the 8 training images"):
        from_tensors(torch.zeros(8, 4, 4), validation_size=8)


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    from genmodels.cli import main

    config = tmp_path / "run.toml"
    config.write_text('[model]\nkind = "classifier"\nnet = "mlp"\n'
                      f'[data]\nname = "folder"\npath = "{tmp_path / "missing"}"\n')
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "does not exist" in err and "missing" in err


# ---------------------------------------------------------------- from_tensors, training


def test_from_tensors_feeds_the_trainer(tmp_path):
    from genmodels.train import Trainer

    images = np.random.default_rng(1).random((64, 28, 28, 1), dtype=np.float32)
    data = from_tensors(images, np.arange(64) % 10, batch_size=32, validation_size=16, seed=0)
    assert data.shape == (1, 28, 28) and len(data.train.tensors) == 2
    assert len(data.eval.tensors[0]) == 16 and len(data.train) == 1
    config = tiny_config(train={"batch_size": 32, "max_steps": 2})
    Trainer(config, tmp_path / "run", data=data).fit()
    assert (tmp_path / "run" / "final.pt").is_file()
    held = from_tensors(torch.zeros(8, 3, 4, 4), held_out=torch.ones(2, 4, 4, 3), batch_size=4)
    assert held.shape == (3, 4, 4) and held.eval.tensors[0].eq(255).all()


def test_mnist_as_png_folder_trains_bit_identically(tmp_path, data_root):
    """The first 1,000 training and 200 test images of MNIST exported as PNG files
    (root/<split>/<label>/<index:05d>.png): the same tensors, the same run."""
    root = tmp_path / "mnist_png"
    sets = {"train": (load_images("mnist", "train", data_root), 1000),
            "test": (load_images("mnist", "test", data_root), 200)}
    for split, (images, n) in sets.items():
        for i in range(n):
            folder = root / split / str(int(images.labels[i]))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images.images[i, 0].numpy(), mode="L").save(folder / f"{i:05d}.png")
    stored = load_folder(root)
    for (split, (images, n)), x, y in zip(sets.items(), (stored.images, stored.test_images),
                                          (stored.labels, stored.test_labels), strict=True):
        assert torch.equal(x, images.images[:n]) and torch.equal(y, images.labels[:n]), split

    from genmodels.train import Trainer

    def run(data: dict, out: Path) -> None:
        config = config_from_dict({
            "model": {"kind": "vae", "net": "mlp", "hidden": [64], "latent_dim": 8,
                      "likelihood": "bernoulli"},
            "data": {"view": "dynamic_binary", **data},
            "train": {"batch_size": 100, "max_steps": 20, "lr": 2e-3, "progress": False,
                      "log_every": 5}})
        Trainer(config, out, data_root=data_root).fit()

    run({"name": "mnist", "subset": 1000}, tmp_path / "builtin")
    run({"name": "folder", "path": str(root)}, tmp_path / "folder")
    builtin, folder = (torch.load(tmp_path / run / "final.pt", weights_only=True)["model"]
                       for run in ("builtin", "folder"))
    assert_identical(builtin, folder)
    losses = [[line for line in metric_lines(tmp_path / run) if "train/loss" in line]
              for run in ("builtin", "folder")]
    assert len(losses[0]) == 4 and losses[0] == losses[1]
