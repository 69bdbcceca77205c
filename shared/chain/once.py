"""A request that is not safe to repeat (a POST or PUT the manifest does not call idempotent) is sent
once per job, even though the queue delivers a job again when an invocation fails or dies: the
first delivery leaves a flag before it sends, and a later delivery that finds it refuses to send.
A job sent back after a 429 is a new attempt (`PageJob.attempt`): the server did not process it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from shared.chain.pages import ChainError
from shared.extract.types import PageRequest

if TYPE_CHECKING:
    from shared.chain.messages import PageJob
    from shared.chain.state import RunState


def send_once(state: RunState, job: PageJob, request: PageRequest | None) -> None:
    """Flag the job's request as sent, or fail when an earlier delivery already sent it."""
    if request is None or request.idempotent:
        return
    name = f"sent/{job.model}/{job.index:06d}.{job.attempt}"
    if state.flag(job.run_id, name):
        raise ChainError(f"{job.model}: page {job.index} of run {job.run_id}: an earlier delivery sent this "
                         f"{request.method} and did not finish; not sent again: the server may have processed it "
                         "(set idempotent: true on the model if repeating it is safe)")
    state.set_flag(job.run_id, name)
