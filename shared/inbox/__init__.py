"""The inbox: files dropped into a source's blob folder (or local folder) loaded as model rows, once
per upload, with receipts and the names the drops are matched by."""
