"""Extraction: one generic extractor that owns pagination, throttling, retries and auth."""
