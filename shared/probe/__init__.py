"""`python main.py probe URL`: draft a manifest entry for a new API endpoint, or a whole database
schema (`probe <SQLAlchemy URL>`, sql_probe.py), in seconds.

One request shows the envelope; a few more find the paging style, which is then verified by
walking pages with the extractor's own paginator. Column types, a primary key and PII rules are
guessed from the records seen, and printed as YAML that `load_project` accepts as it stands.
Several URLs of one API make one source (parents.py), with `parent:` models proposed on request.
"""
from shared.probe.parents import SourceDraft, probe_urls
from shared.probe.probe import ColumnDraft, ProbeOptions, ProbeResult, probe_url
from shared.probe.render import render_source_yaml, render_yaml
from shared.probe.sql_probe import SqlProbeOptions, SqlProbeResult, probe_database
from shared.probe.sql_render import render_sql_yaml
from shared.probe.sql_target import is_database_url
from shared.probe.target import TargetError, parse_pairs
from shared.probe.walk import ProbeError

__all__ = ["ColumnDraft", "ProbeError", "ProbeOptions", "ProbeResult", "SourceDraft", "SqlProbeOptions",
           "SqlProbeResult", "TargetError", "is_database_url", "parse_pairs", "probe_database", "probe_url",
           "probe_urls", "render_source_yaml", "render_sql_yaml", "render_yaml"]
