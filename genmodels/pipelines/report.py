"""``genmodels report RUN_DIR``: a one-page Markdown report of a trained VAE, the demo's last
step. It writes a sample grid, an interpolation, the 15-digit inpainting figure and a short
diversity report (classes covered, Vendi, FID on the shipped classifier's features). Every
file is written once every number is in."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genmodels.errors import InputError
from genmodels.progress import progress, tick_on_forward, tick_on_optimizer_step

N_SAMPLES = 2000  # samples behind the FID, Vendi and class-coverage numbers


@torch.no_grad()
def diversity(model, reference: torch.Tensor, seed: int = 0, repeats: int = 20,
              quantize_steps: int = 200) -> dict[str, float]:
    """FID-MNIST and Vendi of N_SAMPLES samples, and classes covered by 10 quantized vs
    10 i.i.d. samples (mean over ``repeats``)."""
    from genmodels import classifier
    from genmodels.latent import diverse_samples
    from genmodels.metrics import fid, mnist_features, vendi_score

    oracle = classifier()
    samples = model.sample(N_SAMPLES, torch.Generator().manual_seed(seed)).clamp(0, 1)
    covered_iid, covered_quantized = [], []
    with progress(total=repeats * quantize_steps, desc="diversity (quantization)",
                  unit="step") as bar, tick_on_optimizer_step(bar):
        for repeat in range(repeats):
            iid = model.sample(10, torch.Generator().manual_seed(1000 + repeat)).clamp(0, 1)
            quantized = diverse_samples(model, 10, seed=repeat, steps=quantize_steps).clamp(0, 1)
            covered_iid.append(len(set(oracle(iid).argmax(1).tolist())))
            covered_quantized.append(len(set(oracle(quantized).argmax(1).tolist())))
    return {
        "fid_mnist": float(fid(samples, reference[:N_SAMPLES])),
        "vendi": float(vendi_score(mnist_features(samples))),
        "classes_covered_by_samples": len(set(oracle(samples).argmax(1).tolist())),
        "classes_covered_10_iid": sum(covered_iid) / repeats,
        "classes_covered_10_quantized": sum(covered_quantized) / repeats,
    }


def _pair_label(labels: torch.Tensor | None, i: int, j: int) -> str:
    """``7 → 2``: the classes of held-out images i and j (their indices without labels)."""
    return f"#{i} → #{j}" if labels is None else f"{int(labels[i])} → {int(labels[j])}"


def write_report(run: str | Path, data_root: str | None = None, seed: int = 0,
                 repeats: int = 20, quantize_steps: int = 200) -> Path:
    """Figures and ``report.md`` in ``run`` for the VAE saved there."""
    from genmodels import classifier, load
    from genmodels.inpaint import fifteen_digits_figure, held_out_images, run_inpainting
    from genmodels.inpaint.command import decoder_passes
    from genmodels.latent import image_table, interpolate
    from genmodels.models import LatentVariableModel
    from genmodels.plots import save_image_grid

    run = Path(run)
    model = load(run)
    if not isinstance(model, LatentVariableModel):
        raise InputError(f"{run} holds a {model.description}; the report needs a VAE")
    classifier()  # its weights are checked (sha256) before any work rather than after
    images, labels = held_out_images(model.run_config.data, root=data_root, seed=seed)
    samples = model.sample(64, torch.Generator().manual_seed(seed))
    pairs = [(0, 1), (2, 3), (4, 5), (6, 7)]
    interpolation = torch.stack([interpolate(model, images[i], images[j], 10) for i, j in pairs])
    with progress(total=decoder_passes("mwg", {}, 15), desc="inpainting (15 digits)",
                  unit="pass") as bar, tick_on_forward(model.decoder, bar):
        result = run_inpainting(model, images, labels, "top", "mwg", n=15, samples=8, seed=seed,
                                final="mean")
    numbers = diversity(model, images.clamp(0, 1), seed, repeats, quantize_steps)
    about = f"{model.kind} {run.resolve().name}"  # the files, now that all is computed
    save_image_grid(samples, run / "samples.png", title=f"64 samples of {about} (seed {seed})")
    ends = [f"{t:.2g}" for t in torch.linspace(0, 1, interpolation.shape[1]).tolist()]
    ends[0], ends[-1] = "start", "end"
    image_table(interpolation, run / "interpolation.png", col_labels=ends,
                row_labels=[_pair_label(labels, i, j) for i, j in pairs],
                xlabel="t along the slerp path",
                title=f"slerp interpolations ({about}): decodings from the code of one held-out "
                      "image (start) to that of another (end), a pair per row")
    fifteen_digits_figure(result["inputs"], result["mask"], result["completions"],
                          result["truth"], run / "inpainting.png", labels=result["labels"],
                          title=f"{about}: top half erased, Metropolis-within-Gibbs; each row: "
                                "the input (missing pixels grey), 8 completions, the truth")
    (run / "diversity.json").write_text(json.dumps(numbers, indent=2) + "\n")
    rows = [
        (f"FID on the shipped classifier's features ({N_SAMPLES} samples vs test)",
         f"{numbers['fid_mnist']:.2f}"),
        (f"Vendi score (classifier features, {N_SAMPLES} samples)", f"{numbers['vendi']:.2f}"),
        (f"classes covered by {N_SAMPLES} samples",
         f"{numbers['classes_covered_by_samples']} / 10"),
        (f"classes covered by 10 i.i.d. samples (mean of {repeats})",
         f"{numbers['classes_covered_10_iid']:.2f}"),
        (f"classes covered by 10 quantized samples (mean of {repeats})",
         f"{numbers['classes_covered_10_quantized']:.2f}"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    text = f"""# genmodels demo: {model.run_config.kind} on {model.run_config.data.name}

Trained with `genmodels train` (config: `config.toml`); curves in `metrics.png`.

## Samples
![samples](samples.png)

## Interpolations (slerp between test digits)
![interpolation](interpolation.png)

## 15 digits to guess (top half erased; Metropolis-within-Gibbs, 8 completions, truth last)
![inpainting](inpainting.png)

## Diversity
| measure | value |
|---|---|
{table}
"""
    (run / "report.md").write_text(text)
    return run / "report.md"
