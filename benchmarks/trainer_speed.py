"""One epoch through genmodels' Trainer against a pytorch/examples loop, in one process.

    python benchmarks/trainer_speed.py [mlp_classifier vae] [--repeats 2]

The references are the loops of pytorch/examples (mnist/main.py, vae/main.py):
``torchvision.datasets.MNIST`` with ``ToTensor()`` behind a ``DataLoader`` (per-sample PIL
decoding and collation), then zero_grad / forward / loss / backward / Adam step. Ours is
``Trainer.fit()`` on the same net, batch size and optimiser, with the data held in memory as
uint8 tensors; its time is fit()'s loop (every step, its logging and checks), without the
end-of-run evaluation and save, which the references do not do. The two loops alternate
and the best of ``--repeats`` is kept. Results go to docs/results/trainer_speed.json.

- ``mlp_classifier``: configs/mnist_mlp.toml (784-512-256-10, dropout 0.2);
- ``cnn_classifier``: configs/mnist_cnn.toml (the shipped MNIST CNN), target >= 1.5x;
- ``vae``: configs/vae_mnist.toml (the pytorch/examples VAE 784-400-20, batch 128) on grey
  levels as in the example; and pythae's ``TrainingPipeline`` on the same nets
  (pythae 0.1.2, benchmark-only: ``pip install pythae==0.1.2``; ``--no-pythae`` skips it).

Targets (issue 27): for the MLPs >= 3x the reference loop, >= 60% of the sgemm peak, and for
the VAE >= 2x pythae. Beside each time: the FLOP bound (a step's matrix-product and convolution
FLOPs, counted by FlopCounterMode, at the measured sgemm peak of a 2048² product) and, for the
MLPs, the time of those matrix products alone at their real shapes, the floor of any loop with
this BLAS.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from common import sgemm_peak
from torchvision import datasets, transforms

from genmodels.config import Config, load_config
from genmodels.data import load_images, resolve_data_root
from genmodels.models import MODELS
from genmodels.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["train.epochs=1", "train.progress=false", "train.eval_every=1000000000"]


def classifier_loss(model, data, target):
    return F.cross_entropy(model.net(data), target)


def vae_loss(model, data, target):
    """pytorch/examples vae/main.py: summed BCE plus the closed-form KL."""
    mu, log_var = model.encoder(data).chunk(2, dim=1)
    z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
    recon = model.decoder(z)
    bce = F.binary_cross_entropy_with_logits(recon, data, reduction="sum")
    return bce - 0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())


CASES: dict[str, tuple[str, list[str], Callable, float]] = {
    "mlp_classifier": ("mnist_mlp.toml", [], classifier_loss, 3.0),
    "vae": ("vae_mnist.toml", ["data.view=unit"], vae_loss, 3.0),
    "cnn_classifier": ("mnist_cnn.toml", [], classifier_loss, 1.5),
}


def reference_epoch(config: Config, loss_fn: Callable) -> float:
    """pytorch/examples-style epoch; returns seconds."""
    torch.manual_seed(0)
    model = MODELS[config.kind](config.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    dataset = datasets.MNIST(resolve_data_root(), train=True, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.train.batch_size,
                                         shuffle=True, drop_last=True)
    model.train()
    start = time.perf_counter()
    for data, target in loader:
        optimizer.zero_grad()
        loss = loss_fn(model, data, target)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def trainer_epoch(config: Config) -> float:
    """Seconds of fit()'s loop (``Trainer.elapsed``: every step with its logging and checks),
    without the run's final evaluation, figures and save, which the references do not do."""
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, out)
        trainer.fit()
        return trainer.elapsed


def pythae_epoch(config: Config) -> float:
    """One epoch of pythae's ``TrainingPipeline`` (pythae 0.1.2, a benchmark-only dependency)
    on our VAE's encoder and decoder, the same batch size, Adam and learning rate: pythae's
    VAE with its summed binary cross-entropy (on the decoder's sigmoid, as pythae's decoders
    output means) and closed-form KL; the data in memory as a float tensor in [0, 1]. Times the
    pipeline call, setup and final save included, as ``trainer_epoch`` times ``fit()``."""
    from pythae.models import VAE as PythaeVAE
    from pythae.models import VAEConfig as PythaeVAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    torch.manual_seed(0)
    ours = MODELS[config.kind](config.model)

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = ours.encoder

        def forward(self, x: torch.Tensor) -> ModelOutput:
            mu, log_var = self.net(x).chunk(2, dim=1)
            return ModelOutput(embedding=mu, log_covariance=log_var)

    class Decoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = ours.decoder

        def forward(self, z: torch.Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    images = load_images("mnist", "train").images.float().div_(255)  # (60000, 1, 28, 28)
    model = PythaeVAE(PythaeVAEConfig(input_dim=(1, 28, 28), latent_dim=config.model.latent_dim,
                                      reconstruction_loss="bce"),
                      encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as out:
        pipeline = TrainingPipeline(model=model, training_config=BaseTrainerConfig(
            output_dir=out, num_epochs=1, per_device_train_batch_size=config.train.batch_size,
            learning_rate=config.train.lr, optimizer_cls="Adam", no_cuda=True))
        start = time.perf_counter()
        pipeline(train_data=images)
        return time.perf_counter() - start


def gemm_epoch(model: torch.nn.Module, batch_size: int, steps: int) -> float:
    """Seconds of the matrix products alone of ``steps`` training steps (those counted by
    :func:`training_flops`, at their real shapes): the floor of an epoch with this BLAS,
    below which no loop can go however little else it does."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    weights = [torch.randn(m.out_features, m.in_features) for m in layers]
    inputs = [torch.randn(batch_size, m.in_features) for m in layers]
    grads = [torch.randn(batch_size, m.out_features) for m in layers]

    def step() -> None:
        for i, (w, x, g) in enumerate(zip(weights, inputs, grads, strict=True)):
            torch.mm(x, w.t())  # forward
            torch.mm(g.t(), x)  # weight gradient
            if i:
                torch.mm(g, w)  # input gradient (none for the data)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def training_flops(model: torch.nn.Module, config: Config, loss_fn: Callable) -> float:
    """FLOPs of one training step (forward and backward of ``loss_fn`` on a batch) counted by
    ``torch.utils.flop_counter.FlopCounterMode``: matrix products and convolutions, 2 FLOPs a
    multiply-add, the data's gradient not computed; elementwise work not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    data = torch.rand(config.train.batch_size, 1, 28, 28)
    target = torch.randint(10, (config.train.batch_size,))
    with FlopCounterMode(display=False) as counter:
        loss_fn(model, data, target).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-pythae", action="store_true",
                        help="skip pythae's TrainingPipeline (pip install pythae==0.1.2)")
    args = parser.parse_args()

    out = ROOT / "docs" / "results" / "trainer_speed.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    peak = sgemm_peak()
    for name in args.cases:
        file, overrides, loss_fn, target = CASES[name]
        config = load_config(ROOT / "configs" / file, [*COMMON, *overrides])
        reference, ours, pythae, gemm = [], [], [], []
        steps = 60_000 // config.train.batch_size
        net = MODELS[config.kind](config.model)
        for _ in range(args.repeats):
            reference.append(reference_epoch(config, loss_fn))
            ours.append(trainer_epoch(config))
            if name == "vae" and not args.no_pythae:
                pythae.append(pythae_epoch(config))
            if not any(isinstance(m, torch.nn.Conv2d) for m in net.modules()):
                gemm.append(gemm_epoch(net, config.train.batch_size, steps))
        flops = training_flops(net, config, loss_fn) * steps
        gflops = flops / min(ours) / 1e9
        results[name] = {
            "config": f"configs/{file} {' '.join(overrides)}".strip(),
            "reference_seconds": round(min(reference), 2),
            "trainer_seconds": round(min(ours), 2),
            "speedup": round(min(reference) / min(ours), 2), "target": target,
            "trainer_gflops": round(gflops, 1), "sgemm_peak_gflops": round(peak, 1),
            "fraction_of_peak": round(gflops / peak, 3), "fraction_of_peak_target": 0.6,
            "flop_bound_seconds": round(flops / peak / 1e9, 3),
            **({"gemm_only_seconds": round(min(gemm), 3),
                "gemm_only_fraction_of_peak": round(flops / min(gemm) / 1e9 / peak, 3)}
               if gemm else {}),
            "all_reference_seconds": [round(t, 2) for t in reference],
            "all_trainer_seconds": [round(t, 2) for t in ours],
            **({"pythae_seconds": round(min(pythae), 2),
                "speedup_vs_pythae": round(min(pythae) / min(ours), 2),
                "pythae_target": 2.0,
                "all_pythae_seconds": [round(t, 2) for t in pythae]} if pythae else {}),
            "batch_size": config.train.batch_size, "steps": steps,
            "machine": f"{platform.processor() or platform.machine()}, "
                       f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        }
        r = results[name]
        print(f"{name}: reference loop (DataLoader + ToTensor) {r['reference_seconds']:.2f} s, "
              f"Trainer {r['trainer_seconds']:.2f} s per epoch -> {r['speedup']:.2f}x "
              f"(target >= {target}x); Trainer {r['trainer_gflops']:.1f} GFLOP/s = "
              f"{100 * r['fraction_of_peak']:.0f}% of the measured sgemm peak "
              f"{peak:.1f} GFLOP/s (FLOP bound {r['flop_bound_seconds']:.2f} s"
              + (f"; the products alone at these shapes {r['gemm_only_seconds']:.2f} s)"
                 if gemm else ")")
              + (f"; pythae TrainingPipeline {r['pythae_seconds']:.2f} s -> "
                 f"{r['speedup_vs_pythae']:.2f}x (target >= 2x)" if pythae else ""), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
