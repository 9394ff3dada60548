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


def _shapes(output: Any) -> Any:
    """The shapes in a forward output: a tuple per tensor, a list per container, else None."""
    if isinstance(output, Tensor):
        return tuple(output.shape)
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [_shapes(item) for item in output]
    return None


def _numel(shape: Any) -> int:
    """Total number of values in the tensors of a ``_shapes`` structure."""
    if isinstance(shape, list):
        return sum(_numel(item) for item in shape)
    return 0 if shape is None else math.prod(shape)


def _batch_free(shape: Any, doubled: Any) -> Any:
    """``shape`` with its leading dimension shown as -1 where it doubled with the batch
    (``doubled``: the same output's shapes at twice the batch), so packed or repeated batches
    are recognised too; "-" for non-tensors."""
    if isinstance(shape, list):
        return [_batch_free(item, twin) for item, twin in zip(shape, doubled, strict=False)]
    if shape is None:
        return "-"
    dims = list(shape)
    if dims and doubled[0] == 2 * dims[0]:
        dims[0] = -1
    return dims


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
    """Run a forward pass on zeros of shape ``(batch_size, *input_shape)`` and tabulate it.

    A second pass at twice the batch finds the batch dimension, shown as -1. Rows are hooked
    modules (leaves, plus parents with their own parameters) in call order; a module called
    twice gets two rows. Totals come from ``model.parameters()``. The model is not moved: it
    must already live on ``device``. ``forward(model, x)`` replaces ``model(x)``.
    """
    input_shape = tuple(input_shape)
    calls: list[tuple[str, nn.Module, Any]] = []  # (name, module, output) in call order

    def record(label: str) -> Callable[[nn.Module, Any, Any], None]:
        return lambda module, _inputs, output: calls.append((label, module, output))

    handles = [module.register_forward_hook(record(name or type(module).__name__.lower()))
               for name, module in model.named_modules() if _should_hook(module)]

    def run(batch: int) -> list[tuple[str, nn.Module, Any]]:
        calls.clear()
        x = torch.zeros((batch, *input_shape), device=device)
        with torch.no_grad():
            if forward is None:
                model(x)
            else:
                forward(model, x)
        return list(calls)

    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()
        single, double = run(batch_size), run(2 * batch_size)  # the batch dim is what doubles
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    rows = []
    for (name, module, out), (*_, twin) in zip(single, double, strict=False):
        shape = _shapes(out)
        rows.append(_Row(name, type(module).__name__, str(_batch_free(shape, _shapes(twin))),
                         _own_parameters(module), _numel(shape)))

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
