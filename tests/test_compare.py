"""genmodels compare: the curves of two tiny runs on one figure and the table of their final
numbers; --metrics; labels of runs with the same name; bad input is one line and exit 2."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_config

import genmodels.plots
from genmodels.cli import main
from genmodels.pipelines.compare import compare
from genmodels.train import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"data": {"subset": 256, "validation": True, "validation_size": 64},
         "train": {"max_steps": 8, "log_every": 4}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_root):
    """A tiny MLP VAE and a tiny MLP classifier, 8 steps each."""
    folder = tmp_path_factory.mktemp("compare")
    vae = tiny_config(model={"kind": "vae", "latent_dim": 2, "hidden": [16]}, **SMALL)
    Trainer(vae, folder / "vae", data_root=data_root).fit()
    Trainer(tiny_config(**SMALL), folder / "cnn", data_root=data_root).fit()
    return folder / "vae", folder / "cnn"


def last(run, key):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in records if key in r][-1]


@pytest.fixture
def drawn(monkeypatch):
    """The panels and titles that plot_curves was given."""
    calls = []
    plot_curves = genmodels.plots.plot_curves

    def spy(panels, out_path, title=None):
        calls.append((panels, title))
        return plot_curves(panels, out_path, title)

    monkeypatch.setattr(genmodels.plots, "plot_curves", spy)
    return calls


def test_two_runs_on_one_figure_and_one_table(runs, tmp_path, capsys, drawn):
    vae, cnn = runs
    out = tmp_path / "figs" / "both.png"
    assert main(["compare", str(vae), str(cnn), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes().startswith(b"\x89PNG")
    table = (tmp_path / "figs" / "both.md").read_text()
    assert "![curves](both.png)" in table

    (panels, title), = drawn
    assert sorted(panels) == ["eval/loss", "lr", "train/loss"]  # what both runs have
    assert all(list(curves) == ["vae", "cnn"] for curves in panels.values())  # in given order
    assert panels["train/loss"]["vae"][0] == [4, 8]  # steps
    assert title == "2 runs: vae, cnn"

    lines = printed.splitlines()
    assert lines[0] == "| run | kind | steps | eval/loss | lr | train/loss |"
    assert lines[1] == "|---|---|---:|---:|---:|---:|"
    assert lines[2] == (f"| vae | vae | 8 | {last(vae, 'eval/loss'):.4g} | {last(vae, 'lr'):.4g} "
                        f"| {last(vae, 'train/loss'):.4g} |")
    assert lines[3].startswith("| cnn | classifier | 8 | ")
    assert lines[4:] == [f"wrote {out}", f"wrote {out.with_suffix('.md')}"]
    assert "\n".join(lines[:4]) + "\n" in table


def test_chosen_metrics(runs, tmp_path, capsys, drawn):
    vae, cnn = runs
    out = tmp_path / "loss.png"
    assert main(["compare", str(vae), str(cnn), "--out", str(out),
                 "--metrics", "train/loss"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "| run | kind | steps | train/loss |"
    assert list(drawn[0][0]) == ["train/loss"]
    # a metric that only the VAE has
    assert main(["compare", str(vae), str(cnn), "--out", str(out), "--metrics",
                 "train/loss,eval/kl"]) == 2
    assert f"--metrics: {cnn} has no eval/kl" in one_error_line(capsys)


def fake_run(folder, kind="vae", records=({"step": 1, "train/loss": 1.0},)):
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(f'[model]\nkind = "{kind}"\n')
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_runs_with_the_same_name_are_told_apart_by_their_paths(tmp_path):
    a = fake_run(tmp_path / "a" / "run", records=[{"step": 2, "train/loss": 0.5, "lr": 0.1}])
    b = fake_run(tmp_path / "b" / "run", kind="gan",
                 records=[{"step": 3, "train/loss": 0.25, "epoch": 1.0, "monitor/modes": 8}])
    table, figure, notes = compare([str(a), str(b)], tmp_path / "c.svg")
    assert table.splitlines()[2:] == [f"| {a} | vae | 2 | 0.5 |", f"| {b} | gan | 3 | 0.25 |"]
    assert figure.is_file() and notes == tmp_path / "c.md"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("genmodels compare: error: "), err
    return err


def test_bad_input_is_one_line_and_status_2(tmp_path, capsys):
    good = fake_run(tmp_path / "good")
    out = str(tmp_path / "out.png")
    (tmp_path / "empty").mkdir()
    cases = {
        str(tmp_path / "empty"): "is not a run directory (no config.toml)",
        str(tmp_path / "nowhere"): "is not a run directory",
    }
    no_metrics = fake_run(tmp_path / "no_metrics")
    (no_metrics / "metrics.jsonl").unlink()
    cases[str(no_metrics)] = "has no metrics.jsonl"
    no_records = fake_run(tmp_path / "no_records", records=[])
    cases[str(no_records)] = "holds no records yet"
    broken = fake_run(tmp_path / "broken")
    (broken / "metrics.jsonl").write_text("{not json\n")
    cases[str(broken)] = "cannot read the run in"
    other = fake_run(tmp_path / "other", records=[{"step": 1, "eval/loss": 2.0}])
    cases[str(other)] = "the runs share no metric (good: train/loss; other: eval/loss)"
    for folder, message in cases.items():
        assert main(["compare", str(good), folder, "--out", out]) == 2, folder
        assert message in one_error_line(capsys), folder
    assert main(["compare", str(good), "--out", str(tmp_path / "out.txt")]) == 2
    assert "give a .png, .pdf, .svg file name" in one_error_line(capsys)
    assert main(["compare", "--out", out]) == 2  # no run at all
    assert "RUN_DIR" in one_error_line(capsys)
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.md").exists()
