"""What a run reports per model and in total: the summary `main.py run` prints, the ledger stores and
the status API returns, whichever path (tables, documents, the inbox) loaded the model."""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.extract.base import ExtractStats
from shared.plural import plural

CHANGE_WORDS = {"replaced": "replaced", "appended": "appended", "marked": "marked deleted",
                "cleared": "no longer deleted", "opened": "opened as new versions", "closed": "closed as old versions"}


@dataclass
class ModelResult:
    model: str
    stats: ExtractStats
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None
    refused: bool = False   # another run held the model's lease: nothing was read or written
    changes: dict[str, int] = field(default_factory=dict)   # the run's end: marked, cleared, opened, closed...

    def as_dict(self) -> dict:
        return {"model": self.model, "records": self.stats.records, "pages": self.stats.pages, "rows": self.rows,
                "requests": self.stats.requests, "retries": self.stats.retries, "throttled": self.stats.throttled,
                "seconds": round(self.seconds, 3), "warnings": list(self.stats.warnings), "error": self.error,
                "refused": self.refused, **({"changes": self.changes} if self.changes else {})}


@dataclass
class RunSummary:
    run_id: str
    results: list[ModelResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.error is None for r in self.results)

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "ok": self.ok, "seconds": round(self.seconds, 3),
                "records": sum(r.stats.records for r in self.results), "models": [r.as_dict() for r in self.results]}

    def render(self) -> str:
        lines = [f"run {self.run_id}: {'succeeded' if self.ok else 'FAILED'} in {self.seconds:.1f}s"]
        for r in self.results:
            s = r.stats
            if r.error:
                state = "REFUSED" if r.refused else f"FAILED after {s.records} records"
                lines.append(f"  {r.model}: {state}: {r.error}")
            else:
                transport = (f", {plural(s.requests, 'request')}, {plural(s.retries, 'retry', 'retries')}, "
                             f"{s.throttled} throttled (429)") if s.requests else ""
                unit = "page" if s.requests else "chunk"
                lines.append(f"  {r.model}: {plural(s.records, 'record')}, {plural(s.pages, unit)}, "
                             f"{plural(r.rows, 'row')} upserted{transport}, {r.seconds:.1f}s")
            if r.changes:
                lines.append("    " + ", ".join(f"{plural(n, 'row')} {CHANGE_WORDS[k]}" for k, n in r.changes.items()))
            lines.extend(f"    warning: {w}" for w in s.warnings)
        return "\n".join(lines)
