"""The bundled sample REST API: every pagination style, auth, rate limiting and fault injection,
served by the standard library so the demo and the flow tests need no other server."""
from samples.sample_api.server import ApiConfig, SampleApi

__all__ = ["ApiConfig", "SampleApi"]
