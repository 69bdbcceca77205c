"""One recipe for running a model, whichever mode runs it (`main.py run`, the queue chain, an inbox
drop, Mongo documents): the model's stripper, its loader and its ledger marks, on the target engine
of `target/engine.py`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from shared.config.project import ModelRef, Project
from shared.extract.factory import model_stripper
from shared.ledger import RunLedger
from shared.load.loader import Loader
from shared.load.pii_key_check import check_pii_key
from shared.pii.stripper import PiiStripper

_Loader_co = TypeVar("_Loader_co", covariant=True)


class DocumentLoaders(Protocol[_Loader_co]):
    """Where a `store: mongo` model's loader comes from (`mongo.load.DocumentTarget`)."""

    def loader(self, ref: ModelRef, run_id: str) -> _Loader_co: ...


def batch_size(project: Project) -> int:
    """Records per load transaction, the same in every mode (settings `load.batch_size`)."""
    return project.settings.load.batch_size


@dataclass
class ModelRun:
    """A model in a run: what every mode builds the same way from (project, ref, run id). `engine`
    is the target's (None for a `store: mongo` model, whose loader comes from its `DocumentTarget`)."""

    project: Project
    ref: ModelRef
    run_id: str
    ledger: RunLedger
    engine: sa.Engine | None = None

    @property
    def model(self) -> str:
        return self.ref.qualified

    @property
    def batch_size(self) -> int:
        return batch_size(self.project)

    def stripper(self) -> PiiStripper:
        return model_stripper(self.project, self.ref)

    def table_loader(self, tag: str | None = None) -> Loader:
        """The model's table loader, after checking that the target's hashes use this PII key.
        `tag`: what the rows carry as their run id instead of the run's (an inbox file's id)."""
        engine = self.table_engine()
        check_pii_key(engine, self.project, [self.ref.source_name])
        return Loader(engine, self.ref, redaction=self.project.settings.pii.redaction, run_id=tag or self.run_id,
                      batch_size=self.batch_size)

    def document_loader(self, documents: DocumentLoaders[_Loader_co]) -> _Loader_co:
        """A `store: mongo` model's loader, from the run's document target."""
        if not self.ref.documents:
            raise ValueError(f"{self.model}: a table model loads through its table loader")
        return documents.loader(self.ref, self.run_id)

    def table_engine(self) -> sa.Engine:
        if self.engine is None:
            raise ValueError(f"{self.model}: no target engine for a table model")
        return self.engine

    def mark(self, first: int, last: int, stage: str, records: int) -> bool:
        """Mark pages `first` to `last` (inclusive) at `stage` in the ledger; False when marked already."""
        return self.ledger.page_range(self.run_id, self.model, first, last, stage, records)

    def finish(self, outcome: dict[str, Any]) -> None:
        """Record the model's outcome in the run's ledger entry."""
        self.ledger.finish_model(self.run_id, self.model, outcome)
