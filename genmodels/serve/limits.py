"""The web API's limits as plain data: ``genmodels serve --help`` reads them without torch."""

MAX_SAMPLES = 64  # completions per request: more would hold the server for minutes
