"""End-to-end pipelines built on the library: ``evaluate`` (generated images against a reference
set, the engine of ``genmodels evaluate``)."""

from genmodels.pipelines.evaluate import (
    METRICS,
    REFERENCES,
    as_images,
    evaluate_samples,
    load_samples,
    reference_images,
    samples_from_checkpoint,
    write_report,
)

__all__ = [
    "METRICS",
    "REFERENCES",
    "as_images",
    "evaluate_samples",
    "load_samples",
    "reference_images",
    "samples_from_checkpoint",
    "write_report",
]
