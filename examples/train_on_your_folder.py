"""Train a VAE on a folder of your own images, then sample it and measure its samples.

    python examples/train_on_your_folder.py ~/pets --size 32 --epochs 10 --out runs/pets_vae

Any folder of PNG/JPEG files works (one subfolder per class gives labels; ``train/`` and
``test/`` subfolders give the split); the images are resized to ``--size`` and kept in colour
when they have it. The metrics use pixel features (no classifier of your classes is needed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genmodels import load
from genmodels.config import load_config
from genmodels.pipelines.run_evaluation import run_reference, samples_from_checkpoint
from genmodels.pipelines.sample_metrics import evaluate_samples
from genmodels.plots import save_image_grid
from genmodels.train import Trainer

ROOT = Path(__file__).resolve().parents[1]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", type=Path)
parser.add_argument("--size", type=int, default=32, help="side of the square images")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps")
parser.add_argument("--out", type=Path, default=Path("runs/folder_vae"))
args = parser.parse_args()

# the conv VAE of configs/vae_mnist.toml, on the folder's images at --size × --size
config = load_config(ROOT / "configs" / "vae_mnist.toml", [
    "data.name=folder", f"data.path={args.folder.resolve()}",
    f"data.size=[{args.size},{args.size}]",
    "data.view=unit", "model.net=conv", f"train.epochs={args.epochs}",
    f"train.batch_size={args.batch_size}",
    f"train.max_steps={args.max_steps}", "train.figure_every=0"])
Trainer(config, args.out, overwrite=True).fit()

model = load(args.out)                                   # the trained VAE, in eval mode
samples = samples_from_checkpoint(args.out, n=64, seed=0)  # (64, C, size, size) in [0, 1]
save_image_grid(samples, args.out / "samples.png")
held_out = run_reference(config).images                   # the folder's held-out images
report = evaluate_samples(samples, held_out, ["fid", "prdc"], features="pixels")
print(f"{model.kind} on {args.folder}: input {tuple(model.input_shape)}, "
      f"pixel FID {report['fid']['value']:.2f}, precision {report['prdc']['precision']:.3f}, "
      f"recall {report['prdc']['recall']:.3f}; samples in {args.out / 'samples.png'}")
