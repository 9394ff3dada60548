"""What the web page asks of a model, as plain functions of JSON-ready dicts: the JSON API of
``genmodels serve`` without the HTTP (scripts and tests can call it directly).

Images travel as flat lists of C·H·W numbers in [0, 1], row by row (the model's
``input_shape``); masks as flat lists of H·W numbers, 1 = observed, 0 = missing, or the name
of a mask kind (``genmodels.inpaint.MASK_KINDS``). Every bad request raises
:class:`RequestError`, whose message says what was wrong and how to fix it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import torch
from torch import Tensor

from genmodels.errors import InputError
from genmodels.inpaint import family, inpaint, inpainting_method, make_mask
from genmodels.inpaint.metrics import ImageClassifier
from genmodels.inpaint.options import FINAL, OPTIONS
from genmodels.models import Model
from genmodels.serve.limits import MAX_SAMPLES
from genmodels.utils import seed_everything

MAX_STEPS = 1000  # iterations of a method
GAME_DIGITS = 15  # the course's "15 digits to guess"
GAME_SAMPLES = 8  # completions per digit behind the model's guess


class RequestError(InputError):
    """A request the service cannot answer as sent (HTTP ``status``, 400 by default)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class InpaintingService:
    """Inpainting and the 15-digit game for one model that can inpaint (a VAE, a diffusion or
    a flow-matching model of images).

    ``images`` (N, C, H, W) are test images in [0, 1] with their ``labels`` (N,) (or None);
    ``classifier`` takes (n, C, H, W) images in [0, 1] and returns logits (n, K), or is None
    (no class probabilities, no model guesses). ``view`` is the run's ``data.view``: how
    images in [0, 1] map to the model's data range. Calls are serialised by a lock (one model,
    one set of random streams).
    """

    def __init__(self, model: Model, images: Tensor, labels: Tensor | None,
                 classifier: ImageClassifier | None = None, view: str = "unit",
                 max_samples: int = MAX_SAMPLES) -> None:
        family(model)  # TypeError for a model that cannot inpaint
        self.model, self.images, self.labels = model, images, labels
        self.classifier, self.view, self.max_samples = classifier, view, max_samples
        self.shape = tuple(model.input_shape)  # (C, H, W)
        self.lock = threading.Lock()

    # --- what the page shows first ----------------------------------------------------------
    def info(self) -> dict:
        kind = family(self.model)
        return {"kind": self.model.kind, "shape": list(self.shape), "methods": list(kind.methods),
                "default_method": kind.default, "masks": NAMED_MASKS,
                "test_images": len(self.images), "classifier": self.classifier is not None,
                "max_samples": self.max_samples, "game_digits": GAME_DIGITS}

    def digit(self, index: int) -> dict:
        """Test image ``index`` (any integer, taken modulo their number) and its label."""
        index = int(index) % len(self.images)
        return {"index": index, "image": _flat(self.images[index]),
                "label": None if self.labels is None else int(self.labels[index])}

    def mask(self, kind: str, seed: int = 0) -> dict:
        """A mask of the named ``kind`` (random kinds drawn with ``seed``): H·W numbers, 1 =
        observed."""
        return {"kind": kind, "mask": _flat(self._mask(kind, seed))}

    # --- inpainting -------------------------------------------------------------------------
    def inpaint(self, request: dict) -> dict:
        """``{"image", "mask", "method"?, "samples"?, "seed"?, OPTION?...}`` → the completions
        (S flat images in [0, 1]), the classifier's probabilities for each (S × K), its top
        class and probability, the most common class (the model's guess) and the seconds
        taken. The options are those of ``genmodels inpaint`` for the method (``steps``,
        ``final``, ``k``, ``jump_length``, ``resample``, ``step_size``), with its defaults."""
        _check_keys(request, {"image", "mask", "method", "samples", "seed", *METHOD_OPTIONS})
        seed = _integer(request, "seed", 0, 0, 2**31 - 1)
        x = self._image(request.get("image"))
        mask = self._mask(request.get("mask"), seed)
        samples = _integer(request, "samples", 8, 1, self.max_samples)
        method = self._method(request.get("method"))
        options = method_options(request, method)
        start = time.perf_counter()
        completions = self._complete(x[None], mask[None], method, samples, seed, options)[0]
        answer = {"method": method, "samples": samples, "options": options,
                  "completions": [_flat(c) for c in completions],
                  **self._classes(completions)}
        return answer | {"seconds": round(time.perf_counter() - start, 3)}

    # --- the 15-digit game ------------------------------------------------------------------
    def game(self, seed: int, mask: str = "top") -> dict:
        """15 test digits drawn with ``seed``, each with the pixels of mask kind ``mask`` erased
        (their values set to 0 in ``inputs``); the truth is not sent until the answer."""
        index, masks = self._game_digits(seed, mask)
        return {"seed": seed, "mask": mask,
                "digits": [{"image": _flat(self.images[i] * m), "mask": _flat(m)}
                           for i, m in zip(index.tolist(), masks, strict=True)]}

    def answer(self, request: dict) -> dict:
        """``{"seed", "mask"?, "guesses": [15 classes or null]}`` → the truth, the model's
        guesses (the most common class of its completions), the completions, both scores."""
        _check_keys(request, {"seed", "mask", "guesses", "samples", "method"})
        if self.classifier is None or self.labels is None:
            raise RequestError("the game needs labelled test digits and a classifier to read "
                               "the completions; this model's data has none", status=409)
        seed = _integer(request, "seed", None, 0, 2**31 - 1)
        mask_kind = request.get("mask", "top")
        guesses = request.get("guesses")
        if not isinstance(guesses, list) or len(guesses) != GAME_DIGITS or not all(
                g is None or (isinstance(g, int) and not isinstance(g, bool) and 0 <= g <= 9)
                for g in guesses):
            raise RequestError(f"'guesses' should be a list of {GAME_DIGITS} digits 0-9 (null "
                               "for no guess)")
        index, masks = self._game_digits(seed, mask_kind)
        truth = self.images[index]
        samples = _integer(request, "samples", GAME_SAMPLES, 1, self.max_samples)
        method = self._method(request.get("method"))
        completions = self._complete(truth * masks, masks, method, samples, seed,
                                     method_options({}, method))
        model_guesses = [self._classes(c)["guess"] for c in completions]
        labels = [int(y) for y in self.labels[index]]
        return {"truth": labels, "truth_images": [_flat(t) for t in truth],
                "model_guesses": model_guesses,
                "completions": [[_flat(c) for c in row] for row in completions],
                "person_score": sum(g == y for g, y in zip(guesses, labels, strict=True)),
                "model_score": sum(g == y for g, y in zip(model_guesses, labels, strict=True)),
                "digits": GAME_DIGITS}

    # --- helpers ----------------------------------------------------------------------------
    def _game_digits(self, seed: object, mask: object) -> tuple[Tensor, Tensor]:
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
            raise RequestError(f"the seed should be an integer from 0 to 2^31 - 1, got {seed!r}")
        if not isinstance(mask, str) or mask not in NAMED_MASKS:
            raise RequestError(f"unknown game mask {mask!r}; choose one of "
                               f"{', '.join(NAMED_MASKS)}")
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(self.images), generator=generator)[:GAME_DIGITS]
        return index, make_mask(mask, len(index), self.shape[1:], seed)

    def _image(self, values: object) -> Tensor:
        size = math.prod(self.shape)
        x = _numbers(values, "image", size, f"{size} numbers ({'×'.join(map(str, self.shape))}, "
                                            "row by row)")
        if (x < 0).any() or (x > 1).any():
            raise RequestError("image values should lie in [0, 1] (0 black, 1 white)")
        return x.view(self.shape)

    def _mask(self, values: object, seed: int) -> Tensor:
        height, width = self.shape[1:]
        if not 0 <= seed < 2**31:
            raise RequestError(f"the seed should be an integer from 0 to 2^31 - 1, got {seed}")
        if isinstance(values, str):
            if values not in NAMED_MASKS:
                raise RequestError(f"unknown mask {values!r}; send {height * width} numbers "
                                   f"(1 observed, 0 missing) or one of {', '.join(NAMED_MASKS)}")
            return make_mask(values, 1, (height, width), seed)[0]
        mask = _numbers(values, "mask", height * width,
                        f"{height * width} numbers ({height}×{width}, 1 observed, 0 missing)")
        if not ((mask == 0) | (mask == 1)).all():
            raise RequestError("mask values should be 0 (missing) or 1 (observed)")
        if mask.all():
            raise RequestError("the mask leaves every pixel observed: erase some pixels to "
                               "inpaint")
        if not mask.any():
            raise RequestError("the mask erases every pixel: keep some observed to condition on")
        return mask.view(1, height, width)

    def _method(self, method: object) -> str:
        if method is not None and not isinstance(method, str):
            raise RequestError(f"'method' should be a string, got {method!r}")
        try:
            return inpainting_method(self.model, method)
        except InputError as err:
            raise RequestError(str(err)) from None

    def _complete(self, x: Tensor, mask: Tensor, method: str, samples: int, seed: int,
                  options: dict) -> Tensor:
        """(n, S, C, H, W) completions in [0, 1] of images ``x`` (n, C, H, W) in [0, 1]."""
        with self.lock, torch.no_grad():
            seed_everything(seed)
            completions = inpaint(self.model, to_model_range(x, self.view), mask, method,
                                  samples, **options)
        return from_model_range(completions, self.view).clamp(0, 1)

    def _classes(self, completions: Tensor) -> dict:
        """The classifier's view of S completions (S, C, H, W) in [0, 1]."""
        if self.classifier is None:
            return {"probabilities": None, "top": None, "guess": None}
        with torch.no_grad():
            probabilities = self.classifier(completions).softmax(1)  # (S, K)
        best, classes = probabilities.max(1)
        guess = Counter(classes.tolist()).most_common(1)[0][0]
        return {"probabilities": [[round(p, 4) for p in row] for row in probabilities.tolist()],
                "top": [{"class": int(c), "probability": round(float(p), 4)}
                        for c, p in zip(classes, best, strict=True)],
                "guess": int(guess)}


METHOD_OPTIONS = {"steps": (int, 1, MAX_STEPS), "k": (int, 1, 100_000),
                  "jump_length": (int, 1, MAX_STEPS), "resample": (int, 1, 100),
                  "step_size": (float, 0.0, 1e3), "final": (str, "mean", "sample")}


def method_options(request: dict, method: str) -> dict:
    """The options of ``request`` for inpainting ``method`` (see
    :data:`genmodels.inpaint.options.OPTIONS`), checked, with the command line's defaults."""
    given = {name: request[name] for name in METHOD_OPTIONS if request.get(name) is not None}
    foreign = [name for name in given if name not in OPTIONS[method]]
    if foreign:
        raise RequestError(f"{', '.join(foreign)} does not apply to method {method} (it takes "
                           f"{', '.join(OPTIONS[method])})")
    for name, value in given.items():
        kind, low, high = METHOD_OPTIONS[name]
        if kind is str:
            if value not in (low, high):
                raise RequestError(f"'{name}' should be {low!r} or {high!r}, got {value!r}")
        elif kind is int:
            _integer(given, name, None, low, high)
        elif not isinstance(value, int | float) or isinstance(value, bool) \
                or not low <= value <= high:
            raise RequestError(f"'{name}' should be a number from {low} to {high}, got {value!r}")
    if "final" in OPTIONS[method]:
        given.setdefault("final", FINAL)
    return given


NAMED_MASKS = ["top", "bottom", "left", "right", "center", "quadrants1", "quadrants2",
               "quadrants3", "random:0.5", "random:0.75", "rectangles"]


def to_model_range(x: Tensor, view: str) -> Tensor:
    """Images in [0, 1] as a model trained on data view ``view`` takes them: [-1, 1] for
    ``symmetric``, {0, 1} (threshold 0.5) for the binary views, unchanged for ``unit``."""
    if view == "symmetric":
        return x * 2 - 1
    if view in ("static_binary", "dynamic_binary"):
        return (x > 0.5).float()
    return x


def from_model_range(x: Tensor, view: str) -> Tensor:
    """The inverse map of :func:`to_model_range` (binary images stay {0, 1})."""
    return (x + 1) / 2 if view == "symmetric" else x


def _flat(image: Tensor) -> list[float]:
    return [round(v, 4) for v in image.flatten().tolist()]


def _numbers(values: object, name: str, size: int, expected: str) -> Tensor:
    if not isinstance(values, list) or len(values) != size or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        got = f"a list of {len(values)}" if isinstance(values, list) else type(values).__name__
        raise RequestError(f"'{name}' should be a list of {expected}, got {got}")
    return torch.tensor(values, dtype=torch.float32)


def _integer(request: dict, key: str, default: int | None, low: int, high: int) -> int:
    value = request.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RequestError(f"'{key}' should be an integer from {low} to {high}, got {value!r}")
    return value


def _check_keys(request: object, known: set[str]) -> None:
    if not isinstance(request, dict):
        raise RequestError(f"the request body should be a JSON object, got "
                           f"{type(request).__name__}")
    unknown = sorted(set(request) - known)
    if unknown:
        raise RequestError(f"unknown field(s) {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(known))}")


__all__ = ["MAX_SAMPLES", "NAMED_MASKS", "InpaintingService", "RequestError",
           "from_model_range", "to_model_range"]
