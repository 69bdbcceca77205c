"""Pictures drawn from aggregation outputs: the route-table diagram (pure-Python SVG) and the
monthly cost chart (matplotlib). Renderers take plain documents, so they are tested without Mongo."""
