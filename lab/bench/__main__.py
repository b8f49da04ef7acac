"""``python -m lab.bench memory|identify|probe``: the memory and 8B-shape identify checks (the overhead bench
is ``neuron-pilot bench``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from lab.bench.memory import _probe, identify_check, memory_check


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("memory", help="peak RSS of the statistics pass at N and factor*N tokens")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--factor", type=int, default=10)
    p = sub.add_parser("identify", help="the identify stage's steps in this process: seconds, state, checkpoint, "
                                        "peak RSS (e.g. --model random:8b-shape)")
    p.add_argument("--model", default="random:8b-shape")
    p.add_argument("--corpus", default="examples/corpora")
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--bins", type=int, default=2048)
    p = sub.add_parser("probe", help="(internal) one statistics pass, prints peak RSS as JSON")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", type=int, required=True)
    p.add_argument("--corpus", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "probe":
        print(json.dumps(_probe(args.model, args.tokens, args.corpus)))
    elif args.cmd == "identify":
        print(json.dumps(identify_check(args.model, args.corpus, args.tokens, bins=args.bins), indent=1))
    else:
        print(json.dumps(memory_check(args.model, args.tokens, args.factor), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
