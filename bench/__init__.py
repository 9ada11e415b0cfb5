"""Benchmark harness: raw ASGI apps served by Pounce and by peer servers."""
