"""Every task config writes only what makes it that task, resolves to the settings every task
shares, and runs ``fit`` with ``fast_dev_run`` on tiny real-layout files."""

from __future__ import annotations

import pytest
import yaml
from jsonargparse import ArgumentParser
from jsonargparse.typing import import_object

from helpers.cli_args import fast_trainer_args, tiny_model_args
from helpers.reproduction_tables import resolved
from helpers.task_configs import (
    CONFIGS,
    FAST_TASKS,
    TASK_CONFIGS,
    TASKS,
    key_value_lines,
    setting_lines,
)
from pspikessm.cli import cli_main
from pspikessm.cli.train import TASK_DEFAULTS

#: CONTRIBUTING.md, "Configs": a task config holds its task, the rest is written once.
MAX_SETTING_LINES = 30


def test_every_task_config_is_tested():
    assert sorted(TASKS) == sorted(
        str(p.relative_to(CONFIGS))
        for p in CONFIGS.glob("*/*.yaml")
        # ListOps is tested in test_cli.py; trainer presets and model overlays are not tasks.
        if p.name != "listops.yaml" and p.parent.name not in ("trainer", "model")
    )


def test_task_configs_write_only_what_makes_the_task():
    assert len(TASK_CONFIGS) >= 11
    counts = {path.relative_to(CONFIGS): len(setting_lines(path)) for path in TASK_CONFIGS}
    too_long = {str(path): n for path, n in counts.items() if n > MAX_SETTING_LINES}
    assert not too_long, (
        f"setting lines (not comments) over {MAX_SETTING_LINES}: {too_long}; leave out what "
        "equals a default (CONTRIBUTING.md, Configs)"
    )
    shared = set.intersection(*(key_value_lines(path) for path in TASK_CONFIGS))
    assert not shared, (
        f"in every task config: {sorted(shared)}; write it once, in TASK_DEFAULTS "
        "(src/pspikessm/cli/train.py)"
    )


def test_each_task_logs_into_its_own_folder():
    """The one logger setting a task config writes: its runs' folder, unique per task."""
    names = [
        (yaml.safe_load(path.read_text())["trainer"]["logger"]["init_args"]["name"], path.name)
        for path in [*TASK_CONFIGS, CONFIGS / "quickstart.yaml"]
    ]
    assert len({name for name, _ in names}) == len(names), names


#: A CLI parse costs about a second: the fast tier resolves the quickstart and one task config
#: (Text: its data module's defaults differ from its base class's, download: true).
RESOLVED = [
    pytest.param(
        name, marks=[] if name in ("quickstart.yaml", "lra/text.yaml") else pytest.mark.slow
    )
    for name in ["quickstart.yaml", *(str(p.relative_to(CONFIGS)) for p in TASK_CONFIGS)]
]


@pytest.mark.parametrize("config", RESOLVED)
def test_resolved_config_keeps_what_every_task_needs(config, capsys):
    """The shared settings reach every config through the CLI's defaults: the logger and the
    callbacks (progress, job log, learning rates, firing rates, energy, run summary), the
    P-SpikeSSM backbone and the loaders (the quickstart sets its own loader options back)."""
    settings = resolved(f"configs/{config}", capsys)
    trainer, data = settings["trainer"], settings["data"]["init_args"]
    callbacks = [callback["class_path"] for callback in trainer["callbacks"]]
    assert callbacks == [callback["class_path"] for callback in TASK_DEFAULTS["trainer.callbacks"]]
    assert callbacks == [
        "pspikessm.callbacks.TerminalProgressBar",
        "pspikessm.callbacks.JobLog",
        "lightning.pytorch.callbacks.LearningRateMonitor",
        "pspikessm.callbacks.FiringRateMonitor",
        "pspikessm.callbacks.EnergyEstimate",
        "pspikessm.callbacks.RunSummary",
    ]
    assert trainer["callbacks"][2]["init_args"]["logging_interval"] == "step"
    logger = trainer["logger"]
    assert logger["class_path"] == "lightning.pytorch.loggers.TensorBoardLogger"
    written = yaml.safe_load((CONFIGS / config).read_text())["trainer"]["logger"]
    assert logger["init_args"]["save_dir"] == "logs"
    assert logger["init_args"]["name"] == written["init_args"]["name"]
    assert settings["model"]["backbone"]["class_path"] == "pspikessm.models.PSpikeSSM"
    assert settings["model"]["backbone"]["init_args"]["block"]["ssm_lr"] == 1e-3
    # No partial last training batch, as the authors' loaders; the quickstart keeps every one.
    quickstart = config == "quickstart.yaml"
    assert (data["drop_last"], data["num_workers"]) == ((False, 0) if quickstart else (True, 4))
    # What neither the config nor the shared defaults set is the data module's own default.
    parser = ArgumentParser()
    parser.add_class_arguments(import_object(settings["data"]["class_path"]), "data")
    own = parser.get_defaults().data
    written = yaml.safe_load((CONFIGS / config).read_text())["data"]["init_args"]
    shared = TASK_DEFAULTS["data"]["init_args"]
    for key, value in data.items():
        if key not in written and key not in shared:
            assert value == own[key], (key, value, own[key])


@pytest.mark.parametrize(
    "config",
    [c if c in FAST_TASKS else pytest.param(c, marks=pytest.mark.slow) for c in sorted(TASKS)],
)
def test_config_fast_dev_run(tmp_path, config):
    write, extra = TASKS[config]
    data_dir = tmp_path / "data"
    write(data_dir)
    common = [
        f"--config={CONFIGS / config}",
        f"--data.data_dir={data_dir}",
        "--data.batch_size=4",
        "--data.num_workers=0",
        # fast_dev_run swaps the logger for a dummy: without this, last.ckpt lands in ./checkpoints
        f"--checkpoint.dirpath={tmp_path / 'checkpoints'}",
        *tiny_model_args(d_model=8, d_state=4, n_layers=1),
        *fast_trainer_args(tmp_path),
        *extra,
    ]
    cli = cli_main(["fit", *common, "--trainer.fast_dev_run=true"])
    assert cli.trainer.state.finished
    assert "train/loss" in cli.trainer.callback_metrics
    assert cli.model.backbone.num_classes == cli.datamodule.num_classes
    assert cli.model.backbone.dual_input == (config == "lra/retrieval.yaml")
    # The test stage runs the config's sparsity and energy callbacks too.
    test = cli_main(["test", *common, "--trainer.limit_test_batches=1"])
    metrics = test.trainer.callback_metrics
    assert "test/acc" in metrics and "energy/total/nj" in metrics
    assert any(key.startswith("sparsity/test/") for key in metrics)


def test_a_run_without_a_data_module_says_what_is_missing():
    """The default ``data`` holds only the shared loader settings: alone, it names the fix."""
    with pytest.raises(ValueError, match=r"no data module given; name one with data\.class_path"):
        cli_main(["--seed_everything=0", "--trainer.logger=false"], run=False)
