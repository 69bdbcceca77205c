"""Extract -> PII-strip -> load, model by model: the embedded main job (`main.py run`, `rebuild`,
`apply --refill`). The queue-chain functions run the same steps page by page."""
from shared.pipeline.run import run_models
from shared.results import ModelResult, RunSummary

__all__ = ["ModelResult", "RunSummary", "run_models"]
