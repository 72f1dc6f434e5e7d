#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compile cost of the library against Eigen's Tensor module alone.

    python3 benchmarks/compile_time.py [--cxx g++] [--repetitions 7] [--eigen /usr/include/eigen3]
                                       [--flag=-DDIFFUSION_NO_RUNTIME_DISPATCH ...]

Compiles benchmarks/compile/five_samplers.cpp (diffusion.hpp and five samplers instantiated
through the driver) and benchmarks/compile/eigen_tensor.cpp (Eigen's Tensor module only) with
`CXX -std=c++20 -O2 -DEIGEN_USE_THREADS -c`, alternating the two files, and prints the medians of
the compiler's CPU time (user + system; robust on a busy machine) and of the wall time. Only the
standard library is needed. Each --flag is added to both compiles.

It also compiles each file once more with -ftime-report and prints how long g++ spent collecting
garbage. g++ collects at most a few times per file, when its heap has grown past a threshold
(256 MB on a machine with 1 GB of memory or more: --param ggc-min-heapsize and ggc-min-expand), and
one collection of this heap takes ~0.2 s: a file just past the threshold pays for it, a file just
below does not (docs/PERFORMANCE.md, Compile cost).
"""

import argparse
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FILES = [("five_samplers.cpp", "diffusion.hpp + 5 samplers instantiated"),
         ("eigen_tensor.cpp", "Eigen Tensor module only")]


def compile_once(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def garbage_collection_time(cmd):
    """The user time -ftime-report gives to garbage collection (0.0 when g++ did not collect)."""
    report = subprocess.run(cmd + ["-ftime-report"], capture_output=True, text=True, check=True).stderr
    match = re.search(r"^ garbage collection\s*:\s*([0-9.]+)", report, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cxx", default="g++")
    p.add_argument("--repetitions", type=int, default=7)
    p.add_argument("--eigen", default="/usr/include/eigen3", help="Eigen's include directory")
    p.add_argument("--flag", action="append", default=[], help="an extra compiler flag for both files (repeatable)")
    args = p.parse_args()

    base = [args.cxx, "-std=c++20", "-O2", "-DEIGEN_USE_THREADS", *args.flag, "-I", os.path.join(ROOT, "include"),
            "-isystem", args.eigen, "-c", "-o", os.devnull]
    commands = {f: base + [os.path.join(HERE, "compile", f)] for f, _ in FILES}
    version = subprocess.run([args.cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"{version}; {args.repetitions} alternating repetitions; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"command: {shlex.join(base[:-3] + ['-c', '-o', '/dev/null'])} benchmarks/compile/<file>\n")
    samples = {f: ([], []) for f, _ in FILES}
    for _ in range(args.repetitions):
        for f, _ in FILES:
            wall, cpu = compile_once(commands[f])
            samples[f][0].append(wall)
            samples[f][1].append(cpu)
    med = statistics.median
    print("| file | compiler CPU time (s) | wall time (s) |")
    print("|---|---:|---:|")
    for f, label in FILES:
        print(f"| `{f}`: {label} | {med(samples[f][1]):.2f} | {med(samples[f][0]):.2f} |")
    ratio_cpu = med(samples[FILES[0][0]][1]) / med(samples[FILES[1][0]][1])
    ratio_wall = med(samples[FILES[0][0]][0]) / med(samples[FILES[1][0]][0])
    print(f"| ratio | **{ratio_cpu:.2f}x** | {ratio_wall:.2f}x |\n")
    for f, _ in FILES:
        print(f"garbage collection in g++ (-ftime-report, one compile): {f}: "
              f"{garbage_collection_time(commands[f]):.2f} s")
    print()
    print(f"Target: compile cost <= 1.5x the Eigen Tensor include: {'MET' if ratio_cpu <= 1.5 else 'MISSED'} "
          f"({ratio_cpu:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
