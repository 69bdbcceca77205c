"""One recipe for running a model, whichever mode runs it (`main.py run`, the queue chain, an inbox
drop, Mongo documents): the target engine, the model's stripper, its loader and its ledger marks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.config.project import ModelRef, Project
from shared.extract.factory import model_stripper
from shared.ledger import RunLedger
from shared.load.loader import Loader
from shared.load.pii_key_check import check_pii_key
from shared.pii.stripper import PiiStripper
from shared.schema.desired import target_schemas
from shared.target.dialects import SQLITE, create_target_engine

if TYPE_CHECKING:
    from shared.mongo.load import DocumentLoader, DocumentTarget


def target_engine(project: Project, url: str | None = None) -> sa.Engine:
    """The project's target engine (`url`: another target than the settings'). On SQLite it knows
    every schema the project's target holds (`target_schemas`), attached as the work needs them."""
    url = url or project.settings.target_url
    if make_url(url).get_backend_name() != SQLITE:
        return create_target_engine(url)   # the server's schemas: no need to read the derived tables' manifests
    return create_target_engine(url, target_schemas(project))


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

    def loader(self, documents: DocumentTarget | None = None) -> Loader | DocumentLoader:
        """The table loader, or for a `store: mongo` model the document loader of `documents`."""
        if not self.ref.documents:
            return self.table_loader()
        if documents is None:
            raise ValueError(f"{self.model}: a document model needs its document target")
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
