#!/usr/bin/env python3
"""What runs: every task x objective x behaviour, as a tiny run.

Builds one small experiment per combination (a few steps, small networks)
and runs it with the release runner; prints a Markdown table whose cells are
`ok` (the run finished), or the first line of the refusal or failure.

    cargo build --release
    python3 scripts/what-runs.py [--runner target/release/runner] [--jobs 2]

Standard library only. Takes about ten minutes on two cores.
"""

import argparse
import concurrent.futures as cf
import os
import pathlib
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
EX = ROOT / "examples"

GRID = {"env": 'kind = "grid"\nndim = 2\nhorizon = 8', "policy": 'kind = "mlp"\nhidden = 16',
        "train": "steps = 12\nn_evals = 1", "eval": "samples = 64"}
SEQ_TRAIN = {"policy": 'kind = "ssr"\nhidden = 16', "train": "steps = 3\nbatch_size = 8",
             "eval": "every = 3\nsamples = 16"}
DIFF_TRAIN = {"policy": 'kind = "diffusion"\nhidden = 16\nharmonics = 4',
              "train": "steps = 3\nbatch_size = 8",
              "eval": "every = 3\nsamples = 16\nfinal_samples = 16"}

TASKS = {
    "grid (deceptive)": ("grid", GRID),
    "grid (original)": ("grid", dict(GRID, env=GRID["env"] + '\nreward = "original"')),
    "qm9": ("seq", dict(SEQ_TRAIN, env='kind = "qm9str"')),
    "seh": ("seq", dict(SEQ_TRAIN, env='kind = "sehstr"')),
    "tfbind8": ("seq", dict(SEQ_TRAIN, env='kind = "tfbind8"')),
    "rna1": ("seq", dict(SEQ_TRAIN, env='kind = "rna"\ntarget = 1')),
    "bitseq": ("seq", dict(SEQ_TRAIN, env='kind = "bitseq"')),
    "declared table": ("seq", dict(SEQ_TRAIN, env=f'''kind = "sequence"
name = "table"
alphabet = "0123"
length = 8
beta = 20.0
r_max = 10.0
modes = "{ROOT}/datasets/tfbind8/modes.csv"
reward = {{ table = "{ROOT}/datasets/tfbind8/all.csv" }}''')),
    "declared command": ("seq", dict(SEQ_TRAIN, env=f'''kind = "sequence"
name = "motif"
alphabet = "ACGT"
length = 8
beta = 10.0
scale = 1.0
modes = "{EX}/motif_modes.csv"
reward = {{ command = ["python3", "{EX}/motif_oracle.py"] }}''')),
    "25gmm": ("diff", dict(DIFF_TRAIN, env='kind = "gmm25"')),
    "manywell": ("diff", dict(DIFF_TRAIN, env='kind = "many_well"\nsteps = 5')),
    "funnel": ("diff", dict(DIFF_TRAIN, env='kind = "funnel"\nsteps = 5')),
    "gmm40": ("diff", dict(DIFF_TRAIN, env='kind = "gmm40"\nsteps = 5')),
    "energy program": ("diff", dict(DIFF_TRAIN, env=f'''kind = "energy"
name = "four"
dim = 2
steps = 5
log_density = {{ command = ["python3", "{EX}/energy_oracle.py", "--gradient"] }}
gradient = true''')),
}

OBJECTIVES = {"TB": 'kind = "tb"', "DB": 'kind = "db"', "SubTB": 'kind = "subtb"'}


def buffer(family, priority):
    kind = "recent" if family == "seq" else "terminal"
    return f'kind = "{kind}"\npriority = "{priority}"'


def behaviours(family):
    """name -> extra tables (behaviour, buffer, local_search)."""
    ls = 'kind = "mala"\nevery = 2\nsteps = 4\nburn_in = 2' if family == "diff" \
        else 'kind = "back_and_forth"'
    eps = "" if family == "diff" else "\nepsilon = 0.05"
    teacher_buf = None if family == "grid" else buffer(
        family, "reward" if family == "seq" else "teacher_reward")
    return {
        "on-policy": {"behaviour": 'kind = "on_policy"'},
        "epsilon": {"behaviour": 'kind = "on_policy"\nepsilon = 0.05'},
        "GAFN": {"behaviour": 'kind = "gafn"'},
        "PRT": {"behaviour": 'kind = "on_policy"' + eps, "buffer": buffer(family, "reward")},
        "PER": {"behaviour": 'kind = "on_policy"' + eps,
                "buffer": buffer(family, "teacher_reward")},
        "Teacher": {"behaviour": 'kind = "teacher"', "buffer": teacher_buf},
        "Teacher+LS": {"behaviour": 'kind = "teacher"', "buffer": teacher_buf,
                       "local_search": ls,
                       "_schedule": family != "diff"},
    }


def experiment(name, tables, objective, extra):
    text = f'name = "w{name}"\nseed = 0\n'
    parts = dict(tables)
    parts["objective"] = OBJECTIVES[objective]
    for k, v in extra.items():
        if k.startswith("_") or v is None:
            continue
        parts[k] = v
    if extra.get("_schedule"):
        parts["behaviour"] += '\nschedule = ["student", "teacher+ls"]'
    for k in ["env", "policy", "objective", "behaviour", "buffer", "local_search", "train", "eval"]:
        if k in parts:
            text += f"\n[{k}]\n{parts[k]}\n"
    return text


def run(runner, out, name, text):
    path = out / f"{name}.toml"
    path.write_text(text)
    p = subprocess.run([runner, str(path), "--out", str(out / "runs"), "--set", "train.progress=false"],
                       capture_output=True, text=True, timeout=600)
    if p.returncode == 0:
        return "ok"
    lines = [l for l in p.stderr.splitlines() if l.strip() and not l.startswith("note")]
    msg = " ".join(l.strip() for l in lines[:3]) if lines else f"exit {p.returncode}"
    msg = msg.replace("error: ", "").replace(f"invalid experiment {path}:", "")
    msg = msg.replace(f"- {path}: ", "")
    return "refused: " + msg.replace("|", "/").strip()[:120]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runner", default=str(ROOT / "target/release/runner"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    out = pathlib.Path(tempfile.mkdtemp(prefix="what-runs-"))
    jobs = {}
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        for t, (family, tables) in TASKS.items():
            for o in OBJECTIVES:
                for b, extra in behaviours(family).items():
                    name = f"{len(jobs):03d}"
                    text = experiment(name, tables, o, extra)
                    jobs[(t, o, b)] = pool.submit(run, args.runner, out, name, text)
    names = list(behaviours("grid"))
    print("| task | objective | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for t in TASKS:
        for o in OBJECTIVES:
            cells = [jobs[(t, o, b)].result() for b in names]
            print(f"| {t} | {o} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
