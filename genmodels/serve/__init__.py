"""``genmodels serve CHECKPOINT``: a local web page to inpaint digits with a model and to play
the 15-digit game, over a small JSON API (docs/serve.md).

    >>> from genmodels.serve import ApiServer, service_for
    >>> server = ApiServer(service_for("samples/checkpoints/iwae_mnist_grey"), port=0)
    >>> server.serve_forever()   # in a thread; server.url is the page

The page's HTML, script and style ship in ``genmodels/serve/static``; it needs no network.
"""

from __future__ import annotations

from genmodels.serve.command import service_for
from genmodels.serve.server import ApiServer
from genmodels.serve.service import InpaintingService, RequestError

__all__ = ["ApiServer", "InpaintingService", "RequestError", "service_for"]
