"""End-to-end pipelines built on the library: ``sample_metrics`` (the metrics of generated
images against reference images, one table entry per metric), ``run_evaluation`` (a model or a
file of samples, the engine of ``genmodels evaluate``) and ``report`` (``genmodels report``)."""

from genmodels.pipelines.run_evaluation import (
    ALL_METRICS,
    RUN_METRICS,
    draw_samples,
    evaluate_source,
    held_out_numbers,
    mixture_numbers,
    run_reference,
    samples_from_checkpoint,
    write_evaluation,
    write_report,
)
from genmodels.pipelines.sample_metrics import (
    METRICS,
    REFERENCES,
    Metric,
    Reference,
    as_8bit,
    evaluate_samples,
    load_samples,
    reference_images,
    reference_set,
)

__all__ = [
    "ALL_METRICS",
    "METRICS",
    "REFERENCES",
    "RUN_METRICS",
    "Metric",
    "Reference",
    "as_8bit",
    "draw_samples",
    "evaluate_samples",
    "evaluate_source",
    "held_out_numbers",
    "load_samples",
    "mixture_numbers",
    "reference_images",
    "reference_set",
    "run_reference",
    "samples_from_checkpoint",
    "write_evaluation",
    "write_report",
]
