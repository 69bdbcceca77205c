"""Extract -> PII-strip -> load, model by model: the embedded main job (`main.py run`, `rebuild`,
`apply --refill`). The queue-chain functions run the same steps page by page."""
from shared.pipeline.run import ModelResult, RunSummary, run_models

__all__ = ["ModelResult", "RunSummary", "run_models"]
