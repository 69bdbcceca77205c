"""PII stripping, applied to every record right after extraction and before anything is written.

Column rules (`pii`, `pii_fields`) say what to do with known PII columns; `pii_scan` finds PII in
free text that no rule covers, with the detectors of `shared.detect`.
"""
