#!/usr/bin/env python3
"""A reward program that serves a table: `python3 table_oracle.py rewards.csv`.

With `--float32` each reward is first rounded to a 32-bit float, as the
runner reads its own tables, so that the program and a `table` task give
bit-identical rewards.

It speaks the runner's line protocol (docs/tasks.md): it reads candidate
strings, one a line, until an empty line ends the batch; then it writes one
reward per candidate, in order, and flushes. It exits when its input ends.
Standard library only.
"""
import csv
import struct
import sys


def main():
    args = sys.argv[1:]
    float32 = "--float32" in args
    args = [a for a in args if a != "--float32"]
    if len(args) != 1:
        sys.exit("usage: table_oracle.py [--float32] TABLE.csv (columns x, reward)")
    with open(args[0], newline="") as f:
        table = {}
        for row in csv.DictReader(f):
            r = float(row["reward"])
            if float32:
                r = struct.unpack("f", struct.pack("f", r))[0]
            table[row["x"]] = repr(r)
    print(f"table_oracle: {len(table)} strings", file=sys.stderr)
    batch = []
    for line in sys.stdin:
        x = line.strip()
        if x:
            batch.append(x)
            continue
        # The empty line: answer the batch (repr gives back every bit).
        for x in batch:
            if x not in table:
                sys.exit(f"table_oracle: {x!r} is not in the table")
            print(table[x])
        sys.stdout.flush()
        batch = []


if __name__ == "__main__":
    main()
