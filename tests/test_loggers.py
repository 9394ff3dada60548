"""train.loggers: metrics.jsonl (always), metrics.csv and TensorBoard hold the same records and
figures; a resumed run's logs equal an uninterrupted run's in all three; metrics.png is redrawn
while a run trains; a missing tensorboard package and unknown loggers are clear errors."""

from __future__ import annotations

import csv
import io
import json
import sys
import warnings

import numpy as np
import pytest
from conftest import metric_lines, tiny_config
from PIL import Image

from genmodels.config import LOGGER_NAMES, ConfigError
from genmodels.train import Callback, Trainer
from genmodels.train.loggers import LOGGERS, CsvLogger, JsonlLogger, Loggers, figure_tag
from genmodels.train.monitor import ModeCollapseWarning
from genmodels.train.run_dir import RunDirectoryError, open_run_dir

pytestmark = pytest.mark.usefixtures("one_thread")

ALL = ["jsonl", "csv", "tensorboard"]


def vae_config(**train):
    """A tiny MLP VAE on 256 MNIST images (8 steps an epoch), evaluated on 64 held-out ones:
    train lines every 4 steps, evaluations and figures every 8, 16 steps."""
    return tiny_config(model={"kind": "vae", "latent_dim": 2, "hidden": [16]},
                       data={"subset": 256, "validation": True, "validation_size": 64},
                       train={"max_steps": 16, "log_every": 4, "eval_every": 8,
                              "figure_every": 8, "loggers": ALL, **train})


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("loggers") / "full"
    Trainer(vae_config(), out, data_root=data_root).fit()
    return out


def csv_records(run) -> list[dict]:
    """The rows of ``run/metrics.csv`` as records: empty cells left out, numbers read back."""
    with open(run / "metrics.csv", newline="") as f:
        return [{k: json.loads(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


def without_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "time"} for record in records]


def tensorboard(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags["scalars"]}
    images = {tag: [(e.step, e.encoded_image_string) for e in events.Images(tag)]
              for tag in tags["images"]}
    return scalars, images


def pixels(png) -> np.ndarray:
    source = io.BytesIO(png) if isinstance(png, bytes) else png
    with Image.open(source) as picture:
        return np.asarray(picture.convert("RGB"))


def test_every_logger_holds_the_same_records(full_run):
    records = [json.loads(line) for line in (full_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 8, 12, 16, 16]  # train, eval lines
    assert csv_records(full_run) == records
    header = (full_run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["step", "epoch", "time", "train/loss"] and "eval/loss" in header

    scalars, images = tensorboard(full_run)
    expected: dict[str, list] = {}
    for record in records:
        for key, value in record.items():
            if key not in ("step", "epoch", "time"):
                expected.setdefault(key, []).append((record["step"], float(np.float32(value))))
    assert scalars == expected  # TensorBoard keeps float32
    assert {"train/loss", "eval/loss", "lr"} <= set(scalars)
    assert sorted(images) == ["figures/reconstructions", "figures/samples"]
    for tag, logged in images.items():
        assert [step for step, _ in logged] == [8, 16]
        for step, png in logged:
            name = f"{tag.split('/')[1]}_{step:07d}.png"
            assert np.array_equal(pixels(png), pixels(full_run / "figures" / name))


def logs(run):
    """Everything the loggers wrote, without the wall-clock times."""
    scalars, images = tensorboard(run)
    return metric_lines(run), without_time(csv_records(run)), scalars, images


def test_a_run_resumed_past_its_budget_logs_as_an_uninterrupted_one(full_run, tmp_path,
                                                                    data_root):
    config = vae_config(max_steps=8)
    Trainer(config, tmp_path / "part", data_root=data_root).fit()
    config.train.max_steps = 16
    Trainer(config, tmp_path / "part", data_root=data_root, resume=True).fit()
    assert len(list((tmp_path / "part" / "tensorboard").iterdir())) == 2  # one file per start
    assert logs(tmp_path / "part") == logs(full_run)


class CrashAt(Callback):
    """Raises (as a crash would stop the process) after ``step`` steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer, losses):
        if trainer.step == self.step:
            raise RuntimeError("crash")


def test_a_crash_after_a_checkpoint_drops_the_later_logs_everywhere(full_run, tmp_path,
                                                                    data_root):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    config = vae_config(checkpoint_every=10)
    run = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="crash"):
        Trainer(config, run, data_root=data_root, callbacks=[CrashAt(14)]).fit()
    assert [r["step"] for r in metric_lines(run)][-1] == 12  # logged after the checkpoint at 10
    Trainer(config, run, data_root=data_root, resume=True).fit()
    assert logs(run) == logs(full_run)
    # the crashed run's step-12 points are still in its event file: TensorBoard hides them
    written = [event.step for path in sorted((run / "tensorboard").iterdir())
               for event in EventFileLoader(str(path)).Load()
               if any(value.tag == "train/loss" for value in event.summary.value)]
    assert written.count(12) == 2


def test_metrics_png_is_redrawn_while_the_run_trains(tmp_path, data_root, monkeypatch):
    import genmodels.plots

    drawn = []

    def spy(panels, out_path, title=None, **options):
        drawn.append((trainer.step, title, sorted(panels)))
        return plot_curves(panels, out_path, title, **options)

    class SeesTheFigure(Callback):
        def on_step(self, trainer, losses):
            if trainer.step == 10:
                assert (trainer.out / "metrics.png").is_file()

    plot_curves = genmodels.plots.plot_curves
    monkeypatch.setattr(genmodels.plots, "plot_curves", spy)
    config = vae_config(max_steps=12, eval_every=0, figure_every=4, loggers=["jsonl"])
    trainer = Trainer(config, tmp_path / "my-run", data_root=data_root,
                      callbacks=[SeesTheFigure()])
    trainer.fit()
    # at each figure point (4, 8, 12) and evaluation (8: the end of the epoch; 12: the end)
    assert sorted(set(step for step, _, _ in drawn)) == [4, 8, 12]
    assert {title for _, title, _ in drawn} == {"my-run"}
    assert "loss" in drawn[-1][2]
    assert not (tmp_path / "my-run" / "metrics.csv").exists()  # jsonl only
    assert not (tmp_path / "my-run" / "tensorboard").exists()


def test_the_monitor_figures_go_to_tensorboard(tmp_path):
    config = tiny_config(model={"kind": "gan", "net": "mlp", "hidden": [16], "latent_dim": 4},
                         data={"name": "ring", "toy_size": 512},
                         train={"max_steps": 16, "monitor_every": 8, "monitor_samples": 100,
                                "eval_every": 10**6, "loggers": ["tensorboard"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModeCollapseWarning)  # an untrained GAN collapses
        Trainer(config, tmp_path).fit()
    scalars, images = tensorboard(tmp_path)
    assert [step for step, _ in images["figures/monitor"]] == [8, 16]
    assert [step for step, _ in scalars["monitor/modes"]] == [8, 16]
    assert [step for step, _ in images["figures/samples"]] == [16]
    assert (tmp_path / "metrics.jsonl").is_file()  # always written


def test_jsonl_lines_and_csv_columns(tmp_path):
    jsonl = JsonlLogger(tmp_path)
    jsonl.scalars(3, {"epoch": 0.5, "time": 1.0, "train/loss": 0.25, "lr": 0.001})
    assert (tmp_path / "metrics.jsonl").read_text() == \
        '{"step": 3, "epoch": 0.5, "time": 1.0, "train/loss": 0.25, "lr": 0.001}\n'

    table = CsvLogger(tmp_path)
    table.scalars(1, {"epoch": 0.1, "time": 0.5, "train/loss": 2.5})
    table.scalars(2, {"epoch": 0.2, "time": 0.75, "eval/loss": 3.0})  # a new column: rewritten
    table.scalars(4, {"epoch": 0.4, "time": 1.5, "train/loss": 1.5, "monitor/modes": 7})
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [
        "step,epoch,time,train/loss,eval/loss,monitor/modes",
        "1,0.1,0.5,2.5,,", "2,0.2,0.75,,3.0,", "4,0.4,1.5,1.5,,7"]
    again = CsvLogger(tmp_path)  # a resumed run reads the header back, and drops the later rows
    again.truncate(2)
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [
        "step,epoch,time,train/loss,eval/loss", "1,0.1,0.5,2.5,", "2,0.2,0.75,,3.0"]
    assert not list(tmp_path.glob(".*.tmp"))
    assert figure_tag(tmp_path / "samples_0000500.png") == "figures/samples"


def test_logger_names_and_errors(tmp_path, monkeypatch):
    assert set(LOGGER_NAMES) == set(LOGGERS)
    assert tiny_config().train.loggers == ["jsonl"]
    with pytest.raises(ConfigError, match="'tb' is not a logger; choose from: jsonl, csv, "
                                          "tensorboard .jsonl is always written"):
        tiny_config(train={"loggers": ["csv", "tb"]})
    loggers = Loggers.open(["csv"], tmp_path)  # jsonl is always on
    assert [type(logger) for logger in loggers.loggers] == [JsonlLogger, CsvLogger]
    assert Loggers.open(["csv"], tmp_path, active=False).loggers == []

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed
    with pytest.raises(ConfigError, match=r"pip install genmodels\[tensorboard\]"):
        Loggers.open(["tensorboard"], tmp_path / "nothing", active=False)  # checked everywhere


def test_without_tensorboard_a_run_stops_before_writing_anything(tmp_path, data_root,
                                                                 monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r"pip install genmodels\[tensorboard\]"):
        Trainer(vae_config(), tmp_path, data_root=data_root)
    assert list(tmp_path.iterdir()) == []  # so the run can start again at once


def test_the_logs_belong_to_the_run_directory(tmp_path):
    (tmp_path / "metrics.csv").write_text("step\n")
    (tmp_path / "tensorboard").mkdir()
    with pytest.raises(RunDirectoryError, match="holds a run .metrics.csv, tensorboard"):
        open_run_dir(tmp_path, resume=False, overwrite=False)
    open_run_dir(tmp_path, resume=False, overwrite=True).release()
    assert list(tmp_path.iterdir()) == []


def test_a_last_line_cut_short_by_a_kill_is_dropped_on_resume(tmp_path):
    jsonl = JsonlLogger(tmp_path)
    jsonl.path.write_text('{"step": 5, "loss": 1.0}\n{"step": 10, "loss": 0.5}\n{"step": 15, "lo')
    jsonl.truncate(10)
    assert [json.loads(line)["step"] for line in jsonl.path.read_text().splitlines()] == [5, 10]
    jsonl.path.write_text('{"step": 5, "lo\n{"step": 10, "loss": 0.5}\n')
    with pytest.raises(json.JSONDecodeError):  # damage before the end is not a torn append
        jsonl.truncate(10)
