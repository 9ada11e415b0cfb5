"""Raw ASGI apps for the benchmarks: no framework, so the server is what is measured."""
