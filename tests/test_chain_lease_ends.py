"""Every way a queue chain model ends gives its lease back (shared/chain/leasing.py): a model failed
by the stated-total check, a step poisoned on its last attempt; a Transform whose output table
another run holds is sent again later rather than failed; a replayed poisoned message takes the
model's lease again, or is refused by name while another run holds it."""
from __future__ import annotations

from shared.target.lease import Leases
from tests.http_stub import StubServer
from tests.test_pagination_caps import CappedApi, SHORT, chain_harness, harness_for  # noqa: F401  (fixture)

MODEL = "jira.issues"


def test_a_model_failed_by_the_stated_total_releases_its_lease(tmp_path, harness_for):  # noqa: F811
    with StubServer(handler=CappedApi(stated=SHORT)) as server:
        harness = chain_harness(tmp_path, harness_for, server.url(""), "offset_stated")
        run_id = harness.run()
    assert harness.status(run_id)["status"] == "failed"
    assert Leases(harness.engine, harness.project.settings.leases.ttl_seconds).get(MODEL) is None
