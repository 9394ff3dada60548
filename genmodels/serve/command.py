"""The ``genmodels serve`` command: build the service of a checkpoint and serve it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from genmodels.errors import InputError
from genmodels.serve.limits import MAX_SAMPLES

if TYPE_CHECKING:  # torch loads only when the command runs
    from genmodels.serve.service import InpaintingService


def service_for(checkpoint: str | Path, data_root: str | None = None,
                max_samples: int = MAX_SAMPLES) -> InpaintingService:
    """The :class:`~genmodels.serve.service.InpaintingService` of a checkpoint or run
    directory: its model, its run's held-out images in [0, 1] with their labels, and the
    shipped classifier of its dataset when one reads its images. InputError for a model that
    cannot inpaint images."""
    from genmodels import classifier, load
    from genmodels.data import to_unit
    from genmodels.data.build import TOY_DATASETS, dataset_tensors
    from genmodels.inpaint import family
    from genmodels.io import SHIPPED_CLASSIFIERS
    from genmodels.serve.service import InpaintingService

    model = load(checkpoint)
    try:
        family(model)
    except TypeError:
        raise InputError(f"{checkpoint} holds a {model.description}; the page inpaints with a "
                         "VAE, a diffusion or a flow-matching model") from None
    data = model.run_config.data
    if len(model.input_shape) != 3 or data.name in TOY_DATASETS:
        raise InputError(f"{checkpoint} holds a {model.description} of points {model.input_shape}; "
                         "the page needs a model of images")
    _, held_out = dataset_tensors(data, data_root, 0)
    images = to_unit(held_out[0])
    labels = held_out[1] if len(held_out) > 1 else None
    oracle = classifier(data.name) if data.name in SHIPPED_CLASSIFIERS else None
    if oracle is not None and tuple(oracle.input_shape) != tuple(model.input_shape):
        oracle = None
    return InpaintingService(model, images, labels, oracle, data.view, max_samples)


def run(args: argparse.Namespace) -> int:
    from genmodels.serve.server import ApiServer

    service = service_for(args.checkpoint, args.data_root, args.max_samples)
    try:
        server = ApiServer(service, args.host, args.port, verbose=args.verbose)
    except OSError as err:
        raise InputError(f"cannot listen on {args.host}:{args.port} ({err.strerror}); choose "
                         "another --port") from None
    reach = ("this computer only" if args.host in ("127.0.0.1", "localhost", "::1")
             else "other computers too")
    print(f"serving {service.model.kind} from {args.checkpoint} on {server.url} "
          f"(bound to {args.host}: {reach}); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from genmodels.cli import non_negative_int, positive_int

    p = sub.add_parser("serve", help="a local web page: inpaint digits, play the 15-digit game")
    p.add_argument("checkpoint", help="final.pt, run directory or export folder of a VAE, a "
                                      "diffusion or a flow-matching model of images")
    p.add_argument("--port", type=non_negative_int, default=8000, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind; 0.0.0.0 serves other computers of the network")
    p.add_argument("--max-samples", type=positive_int, default=MAX_SAMPLES,
                   help="most completions one request may ask for")
    p.add_argument("--data-root", help="data folder (default: $GENMODELS_DATA, then ./data)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(run=run)
