"""`python -m samples.azure_demo`: the two Azure use cases end to end on a laptop, no servers.

Starts the ARM sample API on a free loopback port, then runs, for examples/azure/manifests:
`main.py run` (network, VMs and cost rows into the embedded document store, owner tags hashed),
`main.py aggregate` (JSON/CSV files and the finops.* / network.* tables in SQLite) and the two
`main.py render` commands, and prints where the pictures are. `--images DIR` also copies the two
pictures there (how docs/images/ is refreshed). State goes to .kspyder/azure (settings.yml).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from samples.arm_api import ArmApi, ArmConfig

MANIFESTS = Path(__file__).resolve().parent.parent / "examples" / "azure" / "manifests"
DEMO_KEY = "demo-only-key-set-KSPYDER_PII_KEY-for-real-data"
DEMO_TOKEN = "azure-demo-token"
PICTURES = {"route-tables": "route-tables.svg", "cost-by-cost-center": "cost-by-cost-center.png"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samples.azure_demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifests", type=Path, default=MANIFESTS, help="default: %(default)s")
    parser.add_argument("--images", type=Path, help="also copy the two pictures into this folder")
    args = parser.parse_args(argv)
    from cli.main import cli

    if not os.environ.get("KSPYDER_PII_KEY"):
        os.environ["KSPYDER_PII_KEY"] = DEMO_KEY
        print("azure demo: KSPYDER_PII_KEY not set; using a demo-only hash key", file=sys.stderr)
    base = ["--manifests", str(args.manifests)]
    with ArmApi(ArmConfig(token=DEMO_TOKEN)) as arm:
        os.environ["ARM_URL"] = arm.base_url
        os.environ["AZURE_SAMPLE_TOKEN"] = DEMO_TOKEN
        print(f"azure demo: ARM sample API on {arm.base_url}", file=sys.stderr)
        for step in (["run"], ["aggregate"]):
            print(f"\n$ python main.py {' '.join(base + step)}", file=sys.stderr)
            code = run_cli(cli, base + step)
            if code:
                return code
    written = {}
    for picture, name in PICTURES.items():
        print(f"\n$ python main.py {' '.join(base)} render {picture}", file=sys.stderr)
        code = run_cli(cli, base + ["render", picture])
        if code:
            return code
        written[picture] = output_folder(args.manifests) / name
    if args.images:
        args.images.mkdir(parents=True, exist_ok=True)
        for path in written.values():
            shutil.copyfile(path, args.images / path.name)
            print(f"copied {path} -> {args.images / path.name}", file=sys.stderr)
    print("\nPictures:")
    for path in written.values():
        print(f"  {path.resolve()}")
    return 0


def output_folder(manifests: Path) -> Path:
    from shared.config.project import load_project

    return Path(load_project(manifests).settings.output.folder)


def run_cli(cli, args: list[str]) -> int:
    try:
        cli.main(args, prog_name="main.py", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
