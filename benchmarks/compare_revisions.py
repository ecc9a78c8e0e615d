"""Run one benchmark on two revisions of the project, alternating, and print each figure's ratio.

    python benchmarks/compare_revisions.py BASE [--bench bench_pipeline.py] [--rounds 2] [-- ARGS]

The base revision is checked out into a temporary git worktree and run with this checkout's
virtualenv, so only the project's code differs. Runs alternate (base, head, base, head, ...) so
that a machine getting busier or quieter weighs on both sides alike; each figure is the median of
its rounds. A ratio above 1 means the head's figure is larger (slower for times, faster for
rates: read the unit).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The benchmarks print one figure per line: two spaces, a label padded to 58, the number, the unit.
FIGURE = re.compile(r"^  (?P<label>\S.{57}) +(?P<number>-?[\d,]+(?:\.\d+)?) (?P<unit>\S+)")


def figures(output: str) -> dict[str, tuple[float, str]]:
    found = {}
    for line in output.splitlines():
        match = FIGURE.match(line)
        if match:
            found[match["label"].strip()] = (float(match["number"].replace(",", "")), match["unit"])
    return found


def run(tree: Path, bench: str, args: list[str]) -> dict[str, tuple[float, str]]:
    env = {**os.environ, "PYTHONPATH": f"{tree}:{tree / 'plugins'}"}
    result = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / bench), *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{bench} failed in {tree}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return figures(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the revision to compare against, e.g. a commit or tag")
    parser.add_argument("--bench", default="bench_pipeline.py")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("bench_args", nargs="*", help="arguments for the benchmark (after --)")
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    with tempfile.TemporaryDirectory(prefix="bench-base-") as name:
        base_tree = Path(name) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=ROOT, check=True
        )
        try:
            rounds: dict[str, list[dict[str, tuple[float, str]]]] = {"base": [], "head": []}
            for number in range(1, args.rounds + 1):
                for side, tree in (("base", base_tree), ("head", ROOT)):
                    print(f"round {number}: {args.bench} on {side}", file=sys.stderr, flush=True)
                    rounds[side].append(run(tree, args.bench, args.bench_args))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
    print(
        f"{args.bench}: base {args.base} against head {head.stdout.strip()}, median of {args.rounds} rounds each"
    )
    print(f"  {'figure':<58} {'base':>10} {'head':>10}  {'head/base':>9}")
    for label in rounds["head"][0]:
        if not all(label in r for side in rounds.values() for r in side):
            continue
        base = statistics.median(r[label][0] for r in rounds["base"])
        now = statistics.median(r[label][0] for r in rounds["head"])
        unit = rounds["head"][0][label][1]
        ratio = f"{now / base:9.2f}" if base else "        -"
        print(f"  {label[:58]:<58} {base:>10,.3f} {now:>10,.3f}  {ratio} {unit}")


if __name__ == "__main__":
    main()
