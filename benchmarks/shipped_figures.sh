#!/usr/bin/env bash
# The figures under samples/ drawn from the shipped models alone (samples/checkpoints), one
# genmodels command each: the headline IWAE's samples, the shipped GANs' samples and the
# "15 digits to guess" of docs/inpainting.md (MwG, 10 completions, 200 iterations, as
# benchmarks/inpainting.py draws them). About 2 minutes on 2 cores.
#   bash benchmarks/shipped_figures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
gm=".venv/bin/genmodels"
ckpt=samples/checkpoints
$gm sample $ckpt/iwae_mnist_nll --n 64 --out samples/vae/iwae_mnist_nll.png
$gm sample $ckpt/gan_mnist --n 64 --out samples/gan/mnist_best.png
$gm sample $ckpt/gan_stacked_mnist --n 64 --out samples/gan/stacked_mnist_shipped.png
for mask in top center quadrants1 random:0.5; do
  $gm inpaint $ckpt/iwae_mnist_nll --mask $mask --method mwg --n 15 --samples 10 --steps 200 \
      --nll 0 --out "samples/inpainting/${mask/:/}.png"
done
for mask in top random:0.5; do
  $gm inpaint $ckpt/iwae_mnist_grey --mask $mask --method mwg --n 15 --samples 10 --steps 200 \
      --nll 0 --out "samples/inpainting/grey_${mask/:/}.png"
done
