"""End-to-end pipelines built on the library: ``sample_metrics`` (the metrics of generated
images against reference images, one table entry per metric), ``run_evaluation`` (a model or a
file of samples, the engine of ``genmodels evaluate``), ``report`` (``genmodels report``) and
``compare`` (``genmodels compare``). The names are imported when first used
(:mod:`genmodels.lazy`): ``genmodels compare --help`` loads no torch."""

from genmodels.lazy import lazy_exports

EXPORTS = {
    "genmodels.pipelines.run_evaluation": (
        "ALL_METRICS", "RUN_METRICS", "draw_samples", "evaluate_source", "held_out_numbers",
        "mixture_numbers", "run_reference", "samples_from_checkpoint", "write_evaluation",
        "write_report"),
    "genmodels.pipelines.sample_metrics": (
        "METRICS", "REFERENCES", "Metric", "Reference", "as_8bit", "evaluate_samples",
        "load_samples", "reference_images", "reference_set"),
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
