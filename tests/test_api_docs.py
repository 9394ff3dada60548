"""The API reference's cross-references (docs/build_api.py, ``make docs``): every Sphinx-style
role in the docstrings resolves, and the checker does catch a broken one."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_api() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("build_api", ROOT / "docs" / "build_api.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_api"] = module
    spec.loader.exec_module(module)
    return module


def test_every_docstring_reference_resolves():
    assert build_api().broken_references() == []


def test_a_reference_to_nothing_is_caught():
    api = build_api()
    import genmodels.inpaint as module

    assert api.resolves("inpaint", module, None)                      # a name of the module
    assert api.resolves("genmodels.schedulers.DDIMScheduler.step", module, None)  # dotted
    assert api.resolves("torch.nn.Module", module, None)
    assert not api.resolves("inpaint_everything", module, None)
    assert not api.resolves("genmodels.schedulers.DDIMScheduler.stepp", module, None)
    assert api.resolves("default", module, module.Family)  # a field of the class
    assert not api.resolves("defaults", module, module.Family)
    import genmodels.data.batches as batches

    assert api.resolves("epoch", batches, batches.TensorBatches)  # assigned as self.epoch
