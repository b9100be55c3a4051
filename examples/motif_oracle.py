#!/usr/bin/env python3
"""A computed reward for DNA 8-mers: how close a string is to a motif.

r(x) = max over the motifs m of exp(-d(x, m)), with d the Hamming distance,
so r = 1 at a motif and falls by e per mismatch. It speaks the runner's line
protocol (docs/tasks.md): candidates one a line, an empty line ends a batch,
one number per candidate back, in order. Standard library only.
"""
import math
import sys

MOTIFS = ["ACGTACGT", "TTTTGGGG", "GATTACAA"]


def reward(x):
    d = min(sum(a != b for a, b in zip(x, m)) for m in MOTIFS)
    return math.exp(-d)


def main():
    batch = []
    for line in sys.stdin:
        x = line.strip()
        if x:
            batch.append(x)
            continue
        for x in batch:
            print(repr(reward(x)))
        sys.stdout.flush()
        batch = []


if __name__ == "__main__":
    main()
