"""Shared by the benchmarks: each figure is measured in 3 runs and printed as min / median / max, next to
the baseline measured in the same runs and the ratio of each run to its own baseline.

A shared, loaded machine moves single figures by 2x; the spread of three runs says how far to trust one.
"""

from __future__ import annotations

import compileall
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

RUNS = 3
T = TypeVar("T")


def repeat(measure: Callable[[int], T], runs: int = RUNS) -> list[T]:
    """`measure(run_number)` called `runs` times, one after the other."""
    return [measure(i) for i in range(runs)]


def spread(values: Sequence[float], fmt: str = ".2f") -> str:
    """'min / median / max' of the runs."""
    return f"{min(values):{fmt}} / {statistics.median(values):{fmt}} / {max(values):{fmt}}"


def show(
    label: str,
    ours: Sequence[float],
    baseline: Sequence[float] | None = None,
    *,
    unit: str = "",
    fmt: str = ".2f",
    baseline_label: str = "baseline",
    target: str = "",
) -> None:
    """One figure: ours, then the same-run baseline and the per-run ratios ours/baseline (min / median / max)."""
    unit = f" {unit}" if unit else ""
    line = f"{label}: {spread(ours, fmt)}{unit}"
    if baseline is not None:
        ratios = [o / b for o, b in zip(ours, baseline, strict=True)]
        line += f"\n    {baseline_label}: {spread(baseline, fmt)}{unit}; ratio {spread(ratios, '.2f')}x"
    if target:
        line += f"  ({target})"
    print(line)


def header(runs: int = RUNS) -> None:
    print(f"(each figure: min / median / max of {runs} runs; ratios are run by run against the same run's baseline)")


def as_installed() -> None:
    """Compile the package's bytecode, as pip does when it installs the wheel: with PYTHONDONTWRITEBYTECODE
    (set on this machine) every child process would otherwise compile monitor from source at each start."""
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "monitor", quiet=1)
