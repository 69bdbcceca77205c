"""The `main.py` command line (click). Thin: parse arguments, call `shared`, print results."""
