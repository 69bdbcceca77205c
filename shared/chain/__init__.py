"""The serverless chain's core: Paginate -> Fetch -> Load -> transform event over Storage queues.

Pure logic over the storage interfaces (`BlobStore`, `QueueStore`): the Azure Functions in
`functions/` and the local host are thin wrappers that decode a queue message and call a `Chain`
step. `names` holds every queue, container and setting name; `messages` the typed messages.
"""
from shared.chain.messages import LoadJob, MessageError, PageJob, RunModel, TransformEvent, decode, encode
from shared.chain.pages import ChainError, raw_blob_name
from shared.chain.steps import Chain

__all__ = ["Chain", "ChainError", "LoadJob", "MessageError", "PageJob", "RunModel", "TransformEvent", "decode",
           "encode", "raw_blob_name"]
