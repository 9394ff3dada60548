"""Keras-style ``model.summary()`` for torch modules: one row per executed layer, plus totals."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

_BYTES_PER_VALUE = 4  # sizes assume float32
_MB = 1024.0**2
_NAME_WIDTH = 34
_SHAPE_WIDTH = 25
_PARAM_WIDTH = 8


@dataclass
class _Row:
    """One recorded forward call of a hooked module."""

    name: str
    kind: str
    shape: str
    params: int
    numel: int


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of (unique) parameter values in ``module``; only ``requires_grad`` ones if asked."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _own_parameters(module: nn.Module) -> int:
    """Parameters registered directly on ``module`` (not its children), each counted once."""
    return sum(p.numel() for p in module.parameters(recurse=False))


def _should_hook(module: nn.Module) -> bool:
    """Leaf modules, and non-leaf modules that hold parameters of their own."""
    has_children = next(module.children(), None) is not None
    return not has_children or _own_parameters(module) > 0


def _describe(output: Any, batch_size: int) -> tuple[Any, int]:
    """(shape description, total numel) of a forward output; the batch dim is shown as -1."""
    if isinstance(output, Tensor):
        shape = list(output.shape)
        if shape and shape[0] == batch_size:
            shape[0] = -1
        return shape, output.numel()
    if isinstance(output, (tuple, list)):
        parts = [_describe(item, batch_size) for item in output]
        return [shape for shape, _ in parts], sum(numel for _, numel in parts)
    if isinstance(output, dict):
        parts = [_describe(item, batch_size) for item in output.values()]
        return [shape for shape, _ in parts], sum(numel for _, numel in parts)
    return "-", 0


def _format_table(rows: list[_Row], footer: list[str]) -> str:
    """Lay the rows out in fixed columns, widening them when a name or shape is long."""
    cells = [(f"{row.name} ({row.kind})", row.shape, f"{row.params:,}") for row in rows]
    name_w = max([_NAME_WIDTH] + [len(c[0]) + 1 for c in cells])
    shape_w = max([_SHAPE_WIDTH] + [len(c[1]) + 1 for c in cells])
    param_w = max([_PARAM_WIDTH] + [len(c[2]) for c in cells])
    rule_len = name_w + shape_w + param_w
    lines = [f"{'Layer (type)':<{name_w}}{'Output Shape':<{shape_w}}{'Param #':>{param_w}}"]
    lines.append("=" * rule_len)
    lines += [f"{name:<{name_w}}{shape:<{shape_w}}{n:>{param_w}}" for name, shape, n in cells]
    lines.append("=" * rule_len)
    lines += footer
    return "\n".join(lines)


def summarize(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    forward: Callable[[nn.Module, Tensor], Any] | None = None,
) -> str:
    """Run one forward pass on zeros of shape ``(batch_size, *input_shape)`` and tabulate it.

    Rows are hooked modules (leaves, plus parents with their own parameters) in call order;
    a module called twice gets two rows. Totals come from ``model.parameters()``. The model is
    not moved: it must already live on ``device``. ``forward(model, x)`` replaces ``model(x)``.
    """
    input_shape = tuple(input_shape)
    rows: list[_Row] = []
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def make_hook(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
            shape, numel = _describe(output, batch_size)
            rows.append(_Row(name, type(module).__name__, str(shape), _own_parameters(module),
                             numel))

        return hook

    modes = {module: module.training for module in model.modules()}
    try:
        for name, module in model.named_modules():
            if _should_hook(module):
                label = name or type(module).__name__.lower()
                handles.append(module.register_forward_hook(make_hook(label)))
        x = torch.zeros((batch_size, *input_shape), device=device)
        model.eval()
        with torch.no_grad():
            if forward is None:
                model(x)
            else:
                forward(model, x)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training

    total = count_parameters(model)
    trainable = count_parameters(model, trainable_only=True)
    input_mb = batch_size * math.prod(input_shape) * _BYTES_PER_VALUE / _MB
    activations_mb = 2 * sum(row.numel for row in rows) * _BYTES_PER_VALUE / _MB
    params_mb = total * _BYTES_PER_VALUE / _MB
    footer = [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"Input size (MB): {input_mb:.2f}",
        f"Forward/backward pass size (MB): {activations_mb:.2f}",
        f"Params size (MB): {params_mb:.2f}",
    ]
    return _format_table(rows, footer)
