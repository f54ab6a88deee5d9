"""Pictures of the fixed validation example: the longest (or chosen) example of the first
batch, drawn over its own length, with a colour bar when the values are probabilities."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers.spiking_doubles import ForcedSpikes, alternating_uniforms, token_batches
from helpers.tensorboard_events import figure_pixels, latest_image, latest_text, load
from pspikessm.callbacks import FiringRateMonitor
from pspikessm.callbacks.example_pictures import ExamplePictures
from pspikessm.callbacks.sparsity_plots import (
    PROBABILITY_LABEL,
    layers_raster_figure,
    raster_figure,
)
from pspikessm.models import PSpikeSSM
from pspikessm.module import SequenceClassifier

LENGTHS = [5, 3, 8, 1, 6, 2]  # first batch of 4: [5, 3, 8, 1], the longest is example 2
P_IN = [1.0, 0.5, 0.0, 0.0]
P_OUT = [0.5, 0.5, 0.5, 0.0]
SOURCE_PROBABILITIES = {
    "layer0/input": P_IN,
    "layer0/output": P_OUT,
    "layer1/input": P_OUT,
    "layer1/output": P_IN,
}


def forced_spikes(probabilities: list[float], length: int) -> torch.Tensor:
    """The (H, L) spikes ForcedSpikes draws for one example of ``length`` valid steps."""
    p = torch.tensor(probabilities)[:, None].expand(-1, length)
    return (alternating_uniforms(1, len(probabilities), length)[0] < p).float()


def validate(tmp_path, monitor: FiringRateMonitor, eval_mode: str = "sample") -> EventAccumulator:
    probabilities = list(SOURCE_PROBABILITIES.values())
    backbone = ForcedSpikes(
        [(probabilities[0], probabilities[1]), (probabilities[2], probabilities[3])]
    )
    module = SequenceClassifier(backbone, num_classes=2, scheduler="constant", eval_mode=eval_mode)
    trainer = L.Trainer(
        accelerator="cpu",
        logger=TensorBoardLogger(tmp_path, name="run"),
        callbacks=[monitor],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(module, dataloaders=token_batches(LENGTHS, batch_size=4), verbose=False)
    (run,) = (tmp_path / "run").glob("version_*")
    return load(run)


@pytest.mark.parametrize(
    ("example_index", "chosen", "length"),
    [(None, 2, 8), pytest.param(3, 3, 1, marks=pytest.mark.slow)],
)
def test_pictures_show_the_chosen_example_over_its_length(tmp_path, example_index, chosen, length):
    events = validate(tmp_path, FiringRateMonitor(example_index=example_index))
    caption = f"example {chosen}, {length} steps"
    spikes = {name: forced_spikes(p, length) for name, p in SOURCE_PROBABILITIES.items()}
    for name, expected in spikes.items():
        reference = figure_pixels(raster_figure(expected, f"{name}: {caption}"))
        np.testing.assert_array_equal(
            latest_image(events, f"sparsity/val/raster/{name}"), reference
        )
    all_layers = figure_pixels(layers_raster_figure(spikes, f"validation {caption}"))
    logged = latest_image(events, "sparsity/val/raster/all_layers")
    np.testing.assert_array_equal(logged, all_layers)
    # The first example (5 steps) would draw another picture: the comparison can tell.
    first = {name: forced_spikes(p, 5) for name, p in SOURCE_PROBABILITIES.items()}
    assert not np.array_equal(logged, figure_pixels(layers_raster_figure(first, "validation")))
    assert f"{length} time steps" in latest_text(events, "sparsity/val/example")
    assert f"example {chosen} of the first batch" in latest_text(events, "sparsity/val/example")
    assert {"sparsity/val/active_ratio/layer0", "sparsity/val/active_ratio/layer1"} <= set(
        events.Tags()["images"]
    )


def test_example_index_beyond_the_batch_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"example_index=4\).*only 4 examples"):
        validate(tmp_path, FiringRateMonitor(example_index=4))
    with pytest.raises(ValueError, match="example_index must be >= 0"):
        FiringRateMonitor(example_index=-1)


def test_probabilities_get_a_colour_bar_and_spikes_do_not():
    spikes = forced_spikes(P_IN, 6)
    probabilities = torch.tensor(P_OUT)[:, None].expand(-1, 6)
    binary = raster_figure(spikes)
    assert len(binary.axes) == 1
    graded = raster_figure(probabilities)
    assert len(graded.axes) == 2 and graded.axes[1].get_ylabel() == PROBABILITY_LABEL
    both = layers_raster_figure({"a/input": spikes, "a/output": probabilities})
    assert [ax.get_ylabel() for ax in both.axes] == [
        "a/input\nneuron",
        "a/output\nneuron",
        PROBABILITY_LABEL,
    ]
    assert len(layers_raster_figure({"a/input": spikes, "a/output": spikes}).axes) == 2


def test_axes_are_time_steps_and_neurons():
    spikes = torch.zeros(4, 11)
    (ax,) = raster_figure(spikes).axes
    assert ax.get_xlim() == (-0.5, 10.5) and ax.get_xlabel() == "time step"
    assert ax.get_ylim() == (3.5, -0.5) and ax.get_ylabel() == "neuron"
    figure = layers_raster_figure({"layer0/input": spikes, "layer0/output": torch.zeros(2, 11)})
    assert [ax.get_xlim() for ax in figure.axes] == [(-0.5, 10.5)] * 2
    assert figure.axes[0].get_ylim() == (3.5, -0.5) and figure.axes[1].get_ylim() == (1.5, -0.5)


def test_expected_eval_mode_draws_probabilities_with_a_colour_bar(tmp_path):
    events = validate(tmp_path, FiringRateMonitor(), eval_mode="expected")
    probabilities = torch.tensor(P_OUT)[:, None].expand(-1, 8)
    reference = figure_pixels(raster_figure(probabilities, "layer0/output: example 2, 8 steps"))
    np.testing.assert_array_equal(
        latest_image(events, "sparsity/val/raster/layer0/output"), reference
    )


def test_pair_batches_pick_the_longest_document():
    pictures = ExamplePictures()
    mask = torch.zeros(4, 1, 9)
    for row, length in enumerate([3, 9, 4, 2]):  # documents: first halves then second halves
        mask[row, :, :length] = 1
    pictures.capture("layer0/input", torch.ones(4, 2, 9) * mask, mask)
    assert pictures.chosen == (1, 9) and pictures.spikes["layer0/input"].shape == (2, 9)


@pytest.mark.slow  # a fit; one-branch pictures stay fast
def test_a_two_branch_model_gets_four_sources_per_layer_in_its_pictures(tmp_path):
    backbone = PSpikeSSM(num_classes=2, vocab_size=20, d_model=4, n_layers=2)  # second branch
    module = SequenceClassifier(backbone, num_classes=2, scheduler="constant")
    trainer = L.Trainer(
        accelerator="cpu",
        logger=TensorBoardLogger(tmp_path, name="run"),
        callbacks=[FiringRateMonitor(histograms=False)],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(module, dataloaders=token_batches(LENGTHS, batch_size=4), verbose=False)
    (run,) = (tmp_path / "run").glob("version_*")
    images = set(load(run).Tags()["images"])
    kinds = ("input", "output", "input_b", "output_b")
    assert images == {
        *(f"sparsity/val/raster/layer{i}/{kind}" for i in (0, 1) for kind in kinds),
        "sparsity/val/raster/all_layers",
        "sparsity/val/active_ratio/layer0",
        "sparsity/val/active_ratio/layer1",
    }
