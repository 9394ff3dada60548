#!/usr/bin/env bash
# The figures of docs/latent.md (samples/latent/*.png except quantized_vs_iid.png, which
# benchmarks/latent_quantization.py draws): two MLP VAEs trained from scratch, then one
# `genmodels latent` command per figure. About 3 minutes on 2 cores.
#   bash benchmarks/latent_figures.sh [RUNS_FOLDER]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-runs/latent_figures}"
out=samples/latent
gm=".venv/bin/genmodels"
$gm train configs/vae_mnist.toml --out "$runs/vae20" train.progress=false
$gm train configs/vae_mnist.toml --out "$runs/vae2" model.latent_dim=2 train.epochs=8 \
    train.progress=false
$gm latent interpolate "$runs/vae20" --pair 0 1 --steps 10 --method lerp --out $out/interpolate_lerp.png
$gm latent interpolate "$runs/vae20" --pair 0 1 --steps 10 --method slerp --out $out/interpolate_slerp.png
$gm latent traverse "$runs/vae20" --pair 0 0 --steps 9 --out $out/traverse.png
$gm latent map "$runs/vae2" --steps 15 --out $out/map_2d.png
$gm latent scatter "$runs/vae2" --n 5000 --out $out/scatter_2d.png
$gm latent scatter "$runs/vae20" --n 5000 --out $out/scatter.png
$gm latent arithmetic "$runs/vae20" --source 3 --target 8 --out $out/arithmetic.png
