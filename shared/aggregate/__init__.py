"""Aggregations: named MongoDB pipelines over `store: mongo` sources, with file and table outputs."""
