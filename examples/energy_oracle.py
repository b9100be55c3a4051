#!/usr/bin/env python3
"""A 2-d energy served by a program: four Gaussians at (+-4, +-4), unit variance.

log R(x) = log( (1/4) sum_m N(x; m, I) ), normalised (log Z = 0); with
`--gradient` each answer is log R followed by its gradient (2 numbers).

It speaks the runner's line protocol (docs/tasks.md): one point a line as
numbers separated by spaces, an empty line ends a batch, one answer line per
point back, in order, then flush. Standard library only.
"""
import math
import sys

MEANS = [(-4.0, -4.0), (-4.0, 4.0), (4.0, -4.0), (4.0, 4.0)]


def answer(x, y, gradient):
    logs = [-0.5 * ((x - a) ** 2 + (y - b) ** 2) for a, b in MEANS]
    top = max(logs)
    weights = [math.exp(l - top) for l in logs]
    total = sum(weights)
    log_r = top + math.log(total) - math.log(4.0) - math.log(2.0 * math.pi)
    if not gradient:
        return repr(log_r)
    # grad log R = sum_m w_m (m - x) / sum_m w_m
    gx = sum(w * (a - x) for w, (a, _) in zip(weights, MEANS)) / total
    gy = sum(w * (b - y) for w, (_, b) in zip(weights, MEANS)) / total
    return f"{log_r!r} {gx!r} {gy!r}"


def main():
    gradient = "--gradient" in sys.argv[1:]
    batch = []
    for line in sys.stdin:
        text = line.strip()
        if text:
            batch.append([float(v) for v in text.replace(",", " ").split()])
            continue
        for x, y in batch:
            print(answer(x, y, gradient))
        sys.stdout.flush()
        batch = []


if __name__ == "__main__":
    main()
