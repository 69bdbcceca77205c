"""kspyder's command line: `python main.py --help`."""
from cli.main import cli

if __name__ == "__main__":
    cli()
