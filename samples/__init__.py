"""Self-contained sample sources (a REST API and an SQL database) for the demo, the flow tests and
the benchmarks, so none of them needs a server or data from outside this repository."""
