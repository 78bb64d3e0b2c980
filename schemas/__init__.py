"""Package data: the manifest JSON Schema (installed as ``reconciler.schemas``); no code."""
