"""Every name the queue chain shares with the world outside Python: queues, containers, settings.

One module on purpose: the functions' bindings, host.json, local.settings.sample.json and the
Bicep templates must all spell these the same way, and tests compare them against this module, so a
rename here is a rename everywhere (or a failing test), never a silent drift.

Queue and container names follow Azure's rules (3-63 lowercase letters, digits, single hyphens);
the storage layer checks that on every call.
"""
from __future__ import annotations

from shared.ledger import CONTAINER as _LEDGER_CONTAINER

# ---------------------------------------------------------------- queues, in chain order
PAGINATE = "kspyder-paginate"     # RunModel: plan one model of a run, fetch its first page
FETCH = "kspyder-fetch"           # PageJob: fetch one page (or SQL chunk), write it to kspyder-raw
LOAD = "kspyder-load"             # LoadJob: upsert one raw page into the target
TRANSFORM = "kspyder-transform"   # TransformEvent: a run's every page is loaded, exactly once per run

QUEUES = (PAGINATE, FETCH, LOAD, TRANSFORM)
POISON_SUFFIX = "-poison"         # the Functions host's convention: `<queue>-poison`


def poison(queue: str) -> str:
    """The queue where the host puts messages that failed `maxDequeueCount` times."""
    return queue + POISON_SUFFIX


PAGINATE_POISON, FETCH_POISON, LOAD_POISON, TRANSFORM_POISON = (poison(q) for q in QUEUES)
POISON_QUEUES = (PAGINATE_POISON, FETCH_POISON, LOAD_POISON, TRANSFORM_POISON)

# ---------------------------------------------------------------- blob containers
RAW = "kspyder-raw"               # PII-stripped pages as JSON Lines, one blob per page (claim-check)
RUNS = _LEDGER_CONTAINER          # the run ledger and the chain's own run state ("kspyder-runs")
INBOX = "kspyder-inbox"           # blob drop: <source>/<model>/<name>.json|csv
OUTPUTS = "kspyder-outputs"       # file outputs of runs and transforms

CONTAINERS = (RAW, RUNS, INBOX, OUTPUTS)

# ---------------------------------------------------------------- app settings the app reads
STORAGE_SETTING = "AzureWebJobsStorage"   # also AzureWebJobsStorage__accountName/__clientId/... (identity)
MANIFESTS_SETTING = "KSPYDER_MANIFESTS"
PII_KEY_SETTING = "KSPYDER_PII_KEY"
TARGET_URL_SETTING = "KSPYDER_TARGET_URL"
SCHEDULE_SETTING = "KSPYDER_SCHEDULE"     # NCRONTAB, used as %KSPYDER_SCHEDULE% in the timer binding
MONGO_URI_SETTING = "KSPYDER_MONGO_URI"

SETTINGS = (STORAGE_SETTING, MANIFESTS_SETTING, PII_KEY_SETTING, TARGET_URL_SETTING, SCHEDULE_SETTING,
            MONGO_URI_SETTING)
