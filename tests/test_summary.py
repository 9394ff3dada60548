"""Tests for genmodels.summary: rows, shapes, parameter counts, modes and hook cleanup."""

from __future__ import annotations

import re

import pytest
import torch
from torch import Tensor, nn

from genmodels.summary import count_parameters, summarize


def _small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 28 * 28, 10),
    )


class _Shared(nn.Module):
    """Uses the same Linear twice in its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.act(self.fc(x)))


class _EncDec(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(6, 3)
        self.decoder = nn.Sequential(nn.Linear(3, 5), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


def _rows(text: str) -> list[tuple[str, str, str, int]]:
    """Parse table rows into (name, type, shape, params)."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"="}]
    assert len(rules) == 2
    pattern = re.compile(r"^(\S+) \((\w+)\)\s+(\[.*\])\s+([\d,]+)$")
    rows = []
    for line in lines[rules[0] + 1 : rules[1]]:
        match = pattern.match(line)
        assert match, line
        name, kind, shape, params = match.groups()
        rows.append((name, kind, shape, int(params.replace(",", ""))))
    return rows


def _footer_value(text: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}: (\S+)$", text, re.MULTILINE)
    assert match, label
    return match.group(1)


def _footer_int(text: str, label: str) -> int:
    return int(_footer_value(text, label).replace(",", ""))


def test_rows_in_order_with_shapes_and_params() -> None:
    net = _small_net()
    text = summarize(net, (1, 28, 28))
    assert text.splitlines()[0].startswith("Layer (type)")
    assert _rows(text) == [
        ("0", "Conv2d", "[-1, 8, 28, 28]", 80),
        ("1", "ReLU", "[-1, 8, 28, 28]", 0),
        ("2", "Flatten", "[-1, 6272]", 0),
        ("3", "Linear", "[-1, 10]", 62730),
    ]
    total = sum(p.numel() for p in net.parameters())
    assert total == 80 + 62730
    assert _footer_int(text, "Total params") == total
    assert _footer_int(text, "Trainable params") == total
    assert _footer_int(text, "Non-trainable params") == 0
    assert "Total params: 62,810" in text


def test_batch_dim_is_minus_one_for_any_batch_size() -> None:
    text = summarize(_small_net(), (1, 28, 28), batch_size=3)
    shapes = [row[2] for row in _rows(text)]
    assert shapes[0] == "[-1, 8, 28, 28]"
    assert shapes[-1] == "[-1, 10]"


def test_sizes_in_mb() -> None:
    batch = 4
    text = summarize(_small_net(), (1, 28, 28), batch_size=batch)
    numel = batch * (8 * 28 * 28 * 2 + 6272 + 10)
    assert float(_footer_value(text, "Forward/backward pass size (MB)")) == pytest.approx(
        2 * numel * 4 / 1024**2, abs=0.005)
    assert float(_footer_value(text, "Input size (MB)")) == pytest.approx(
        batch * 28 * 28 * 4 / 1024**2, abs=0.005)
    assert float(_footer_value(text, "Params size (MB)")) == pytest.approx(
        62810 * 4 / 1024**2, abs=0.005)


def test_frozen_layer_changes_trainable_count() -> None:
    net = _small_net()
    net[0].requires_grad_(False)
    text = summarize(net, (1, 28, 28))
    assert _footer_int(text, "Total params") == 62810
    assert _footer_int(text, "Trainable params") == 62730
    assert _footer_int(text, "Non-trainable params") == 80
    assert count_parameters(net) == 62810
    assert count_parameters(net, trainable_only=True) == 62730


def test_shared_module_appears_twice_counted_once() -> None:
    model = _Shared()
    text = summarize(model, (4,))
    rows = _rows(text)
    assert [(r[0], r[1]) for r in rows] == [("fc", "Linear"), ("act", "Tanh"), ("fc", "Linear")]
    assert rows[0][3] == rows[2][3] == 20
    assert _footer_int(text, "Total params") == 20 == sum(p.numel() for p in model.parameters())


def test_training_flag_restored_and_eval_during_pass() -> None:
    seen: list[bool] = []
    net = _small_net()
    net[1].register_forward_hook(lambda m, i, o: seen.append(m.training))
    net.train()
    net[2].eval()  # a mixed state must come back as it was
    summarize(net, (1, 28, 28))
    assert seen == [False, False]  # one pass at the batch, one at twice it
    assert net.training and net[0].training and net[3].training
    assert not net[2].training
    net.eval()
    summarize(net, (1, 28, 28))
    assert not any(m.training for m in net.modules())


def test_hooks_removed_afterwards() -> None:
    net = _small_net()
    summarize(net, (1, 28, 28))
    assert all(len(m._forward_hooks) == 0 for m in net.modules())


def test_hooks_removed_when_forward_fails() -> None:
    net = _small_net()
    net.train()
    with pytest.raises(RuntimeError):
        summarize(net, (3, 28, 28))  # wrong channel count
    assert all(len(m._forward_hooks) == 0 for m in net.modules())
    assert net.training


def test_custom_forward_callable() -> None:
    model = _EncDec()
    text = summarize(model, (3,), batch_size=2, forward=lambda m, x: m.decoder(x))
    assert _rows(text) == [
        ("decoder.0", "Linear", "[-1, 5]", 20),
        ("decoder.1", "Sigmoid", "[-1, 5]", 0),
    ]
    # uncalled encoder still counted in totals
    assert _footer_int(text, "Total params") == 20 + 21


def test_batch_dim_is_what_scales_with_the_batch() -> None:
    class Table(nn.Module):  # a batch-independent output keeps its leading dimension
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(7, 3))

        def forward(self, x: Tensor) -> Tensor:
            return self.weight * 1

    model = nn.ModuleDict({"fc": nn.Linear(3, 4), "table": Table()})
    packed = summarize(model, (3,), forward=lambda m, x: (m["fc"](x.repeat(2, 1)), m["table"](x)))
    assert [(r[0], r[2]) for r in _rows(packed)] == [("fc", "[-1, 4]"), ("table", "[7, 3]")]


def test_tuple_outputs_and_parent_with_own_params() -> None:
    class Split(nn.Module):
        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            return x[:, :2], x[:, 2:]

    class Parent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(5))
            self.split = Split()

        def forward(self, x: Tensor) -> Tensor:
            a, b = self.split(x * self.scale)
            return torch.cat([b, a], dim=1)

    text = summarize(Parent(), (5,))
    lines = [line for line in text.splitlines() if "(" in line and "Layer" not in line]
    assert lines[0].startswith("split (Split)") and "[[-1, 2], [-1, 3]]" in lines[0]
    assert lines[1].startswith("parent (Parent)") and "[-1, 5]" in lines[1]
    assert lines[1].split()[-1] == "5"
