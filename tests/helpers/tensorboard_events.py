"""Reading what a run wrote for TensorBoard: scalars, texts, images, layout, hparams.

Each function reads the event files as TensorBoard does (``EventAccumulator`` over a run
folder loads every event file in it, in order; the latest value of a tag is the one shown).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

LAYOUT_TAG = "custom_scalars__config__"


def load(run: Path) -> EventAccumulator:
    """Every event of the run folder ``run``, nothing sampled away."""
    sizes = {"scalars": 0, "images": 0, "tensors": 0, "histograms": 0}
    return EventAccumulator(str(run), size_guidance=sizes).Reload()


def latest_scalar(events: EventAccumulator, tag: str) -> float:
    return events.Scalars(tag)[-1].value


def latest_text(events: EventAccumulator, tag: str) -> str:
    """The latest text written with ``SummaryWriter.add_text(tag, ...)``."""
    return events.Tensors(f"{tag}/text_summary")[-1].tensor_proto.string_val[0].decode()


def latest_image(events: EventAccumulator, tag: str) -> np.ndarray:
    """RGB pixels (height, width, 3) of the latest image of ``tag``."""
    encoded = events.Images(tag)[-1].encoded_image_string
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))


def figure_pixels(figure: Figure) -> np.ndarray:
    """RGB pixels of a figure, rendered as ``SummaryWriter.add_figure`` renders it."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3]


def layout_charts(events: EventAccumulator, category: str) -> dict[str, list[str]]:
    """Chart title → tag regexes of ``category`` in the latest custom-scalars layout."""
    layout = layout_pb2.Layout()
    layout.ParseFromString(events.Tensors(LAYOUT_TAG)[-1].tensor_proto.string_val[0])
    (found,) = [c for c in layout.category if c.title == category]
    return {chart.title: list(chart.multiline.tag) for chart in found.chart}


def matching(regexes: list[str], tags: set[str]) -> set[str]:
    """The tags a multiline chart draws: TensorBoard keeps those a regex ``match``es."""
    return {tag for tag in tags if any(re.compile(r).match(tag) for r in regexes)}


def hparams(events: EventAccumulator) -> tuple[dict[str, object], list[str]]:
    """The run's hyperparameters (name → value) and the metric tags of the HPARAMS tab."""
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = {}
    for name, value in start.session_start_info.hparams.items():
        values[name] = getattr(value, value.WhichOneof("kind"))
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    return values, [info.name.tag for info in experiment.experiment.metric_infos]
