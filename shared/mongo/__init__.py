"""MongoDB: the document store of `store: mongo` sources (a server, or the embedded store on disk)."""
