"""scripts/: the SLURM scripts parse (``bash -n``); reproduce.sbatch submits one array element
per task config and the report after them, requeues a preempted element (exit status 75), and
prints instead of running in its dry-run modes. sbatch, srun and scontrol are stand-ins that
record their arguments."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "reproduce.sbatch"
TASKS = sorted(
    str(path.relative_to(ROOT))
    for folder in ("lra", "mnist", "speech")
    for path in (ROOT / "configs" / folder).glob("*.yaml")
)


@pytest.mark.parametrize("script", sorted((ROOT / "scripts").glob("*.sbatch")), ids=str)
def test_the_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


def stand_ins(folder: Path, srun_status: int = 0) -> dict[str, str]:
    """An environment whose sbatch, srun and scontrol append their arguments to calls.txt
    (sbatch answers job id 1234, srun exits with ``srun_status``)."""
    folder.mkdir()
    for name, status in (("sbatch", 0), ("srun", srun_status), ("scontrol", 0)):
        answer = "echo 1234" if name == "sbatch" else "true"
        tool = folder / name
        tool.write_text(
            f'#!/bin/bash\necho "{name} $*" >> {folder}/calls.txt\n{answer}\nexit {status}\n'
        )
        tool.chmod(0o755)
    return dict(os.environ, PATH=f"{folder}:{os.environ['PATH']}")


def run(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def element_env(env: dict[str, str], index: int, dry: bool = False) -> dict[str, str]:
    return {
        **env,
        "SLURM_ARRAY_TASK_ID": str(index),
        "SLURM_ARRAY_JOB_ID": "7",
        "TASK_CONFIGS": ":".join(TASKS),
        "DRY_RUN": "1" if dry else "0",
    }


def test_dry_run_prints_the_array_and_the_report_job_and_submits_nothing(tmp_path):
    env = stand_ins(tmp_path / "bin")
    result = run(["--dry-run"], env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"sbatch --parsable --array=0-{len(TASKS) - 1} ")
    assert ":".join(TASKS) in lines[0] and lines[0].endswith("scripts/reproduce.sbatch")
    assert "--dependency=afterany:ARRAY_JOB_ID" in lines[1] and "pspikessm\\ report" in lines[1]
    assert lines[2:] == [f"# element {i}: {config}" for i, config in enumerate(TASKS)]
    assert not (tmp_path / "bin" / "calls.txt").exists()


def test_submit_chains_the_report_to_the_array(tmp_path):
    env = stand_ins(tmp_path / "bin")
    work = tmp_path / "repo"
    (work / "configs" / "lra").mkdir(parents=True)
    (work / "configs" / "lra" / "listops.yaml").write_text("")
    result = run(["configs/lra/listops.yaml"], env, cwd=work)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "bin" / "calls.txt").read_text().splitlines()
    assert calls[0].startswith("sbatch --parsable --array=0-0 ")
    assert "TASK_CONFIGS=configs/lra/listops.yaml" in calls[0]
    assert "--dependency=afterany:1234" in calls[1] and "logs/report-1234.md" in calls[1]
    assert (work / "logs").is_dir()  # where SLURM writes the element logs
    missing = run(["configs/nothing.yaml"], env, cwd=work)
    assert missing.returncode == 2 and "no config configs/nothing.yaml" in missing.stderr


def test_an_element_trains_its_config_then_tests_the_best_checkpoint(tmp_path):
    env = element_env(stand_ins(tmp_path / "bin"), index=1)
    best = tmp_path / "logs" / "task" / "slurm-7_1" / "checkpoints" / "best-epoch003-step40.ckpt"
    best.parent.mkdir(parents=True)
    best.write_bytes(b"")
    result = run([], env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "bin" / "calls.txt").read_text().splitlines()
    folder = "--trainer.logger.init_args.version slurm-7_1"
    assert calls == [
        f"srun pspikessm fit --config {TASKS[1]} {folder} --ckpt_path last",
        f"srun pspikessm test --config {TASKS[1]} {folder} --ckpt_path {best.relative_to(tmp_path)}",
    ]


def test_a_preempted_element_requeues_itself(tmp_path):
    env = element_env(stand_ins(tmp_path / "bin", srun_status=75), index=0)
    result = run([], {**env, "OVERLAYS": "configs/model/fast.yaml"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "bin" / "calls.txt").read_text().splitlines()
    assert calls == [
        f"srun pspikessm fit --config {TASKS[0]} --config configs/model/fast.yaml "
        "--trainer.logger.init_args.version slurm-7_0 --ckpt_path last",
        "scontrol requeue 7_0",
    ]


def test_a_failed_element_fails_with_its_status(tmp_path):
    result = run([], element_env(stand_ins(tmp_path / "bin", srun_status=3), index=0), tmp_path)
    assert result.returncode == 3
    assert len((tmp_path / "bin" / "calls.txt").read_text().splitlines()) == 1  # no test


def test_an_element_dry_run_prints_its_commands(tmp_path):
    result = run([], element_env(stand_ins(tmp_path / "bin"), index=2, dry=True), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"+ srun pspikessm fit --config {TASKS[2]} "
        "--trainer.logger.init_args.version slurm-7_2 --ckpt_path last",
        f"+ srun pspikessm test --config {TASKS[2]} "
        "--trainer.logger.init_args.version slurm-7_2 --ckpt_path last",
    ]
    assert not (tmp_path / "bin" / "calls.txt").exists()
