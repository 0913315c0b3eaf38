"""``python -m helpers.sources``: the source wizard (see :mod:`helpers.sources.sniff`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from helpers.core.errors import SourceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.sources",
                                     description="Propose catalogue entries for your files (review before use).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("suggest", help="sniff one or more files and print a proposed catalogue")
    p.add_argument("files", nargs="+", type=Path, help="CSV/TSV, Excel, Parquet, JSON Lines or JSON files")
    p.add_argument("--currency", default="EUR", help="ISO code of the amounts (default EUR)")
    p.add_argument("--name", default="Your data", help="what the reports call the data set")
    p.add_argument("--write", type=Path, help="write the proposal to this file instead of printing it")
    p.add_argument("--force", action="store_true", help="overwrite --write's file if it exists")
    args = parser.parse_args(argv)
    from helpers.sources.sniff import suggest_catalog

    try:
        text = suggest_catalog(list(args.files), args.currency, args.name)
    except SourceError as exc:
        print(f"Cannot read {exc}", file=sys.stderr)
        return 2
    if args.write:
        if args.write.exists() and not args.force:
            print(f"{args.write} exists; use --force to overwrite it", file=sys.stderr)
            return 2
        args.write.write_text(text, encoding="utf-8")
        print(f"Proposed catalogue written to {args.write}; review it, then run "
              f"python -m helpers.run -p 01_collection.catalog={args.write} -p 01_collection.sample_data=false")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
