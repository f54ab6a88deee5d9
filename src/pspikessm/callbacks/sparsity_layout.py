"""The "Sparsity" category of TensorBoard's custom-scalars dashboard: every layer in one chart.

TensorBoard's scalar dashboard draws one chart per tag, so comparing layers means clicking
through many panels. The custom-scalars dashboard (tab CUSTOM SCALARS) draws the charts of a
layout written into the event file: here, per stage, one chart with the firing rate of every
spike source (``sparsity/T/S/rate``) and of all together (``sparsity/T/rate``), one with
the silent fractions (``sparsity/T/S/silent``), and beside it the two signs of neurons dying:
the fraction of drives outside the firing window, where no gradient passes
(``sparsity/T/S/drive_outside``), and the mean drive (``sparsity/T/S/drive_mean``). Charts select their tags by regular
expression, so the layout is the same for every model, whatever its sources are named, and
TensorBoard merges the layouts of many runs into the same charts.
"""

from __future__ import annotations

from collections.abc import Iterable

CATEGORY = "Sparsity"
STAGES = ("train", "val", "test")

#: Lightning stage (``setup``'s argument) → the sparsity stages it logs.
STAGES_OF = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}


def rate_chart(stage: str) -> tuple[str, list[str]]:
    """Title and tag regexes of the firing-rate chart of ``stage``."""
    return f"{stage}: firing rate per layer", [rf"^sparsity/{stage}/(.+/)?rate$"]


def silent_chart(stage: str) -> tuple[str, list[str]]:
    """Title and tag regexes of the silent-fraction chart of ``stage``."""
    return f"{stage}: fraction of silent neurons", [rf"^sparsity/{stage}/.+/silent$"]


def drive_charts(stage: str) -> list[tuple[str, list[str]]]:
    """Titles and tag regexes of the drive charts of ``stage``: outside the window, mean."""
    return [
        (
            f"{stage}: fraction of drives outside the firing window (no gradient)",
            [rf"^sparsity/{stage}/.+/drive_outside$"],
        ),
        (f"{stage}: mean drive per layer", [rf"^sparsity/{stage}/.+/drive_mean$"]),
    ]


def sparsity_layout(stages: Iterable[str]) -> dict[str, dict[str, list]]:
    """The layout for ``SummaryWriter.add_custom_scalars``: four multiline charts per stage
    (rate, silent fraction, drives outside the window, mean drive), in the order train, val,
    test."""
    charts: dict[str, list] = {}
    for stage in STAGES:
        if stage in stages:
            for title, regexes in (rate_chart(stage), silent_chart(stage), *drive_charts(stage)):
                charts[title] = ["Multiline", regexes]
    return {CATEGORY: charts}
