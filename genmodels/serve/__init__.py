"""``genmodels serve CHECKPOINT``: a local web page to inpaint digits with a model and to play
the 15-digit game, over a small JSON API (docs/serve.md).

    >>> from genmodels.serve import ApiServer, service_for
    >>> server = ApiServer(service_for("samples/checkpoints/iwae_mnist_grey"), port=0)
    >>> server.serve_forever()   # in a thread; server.url is the page

The page's HTML, script and style ship in ``genmodels/serve/static``; it needs no network.
"""

from genmodels.lazy import lazy_exports

EXPORTS = {"genmodels.serve.command": ("service_for",), "genmodels.serve.server": ("ApiServer",),
           "genmodels.serve.service": ("InpaintingService", "RequestError")}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)  # torch loads when first used
__all__ = sorted(name for names in EXPORTS.values() for name in names)
