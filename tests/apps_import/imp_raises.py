"""A module with a bug: it raises while being imported."""

raise RuntimeError("boom from imp_raises")
