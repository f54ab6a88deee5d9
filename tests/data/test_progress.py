"""Progress of long data work: a rich bar on a terminal, a line per 10 % in a log, rank 0 only."""

from __future__ import annotations

import io
import logging

from lightning.pytorch.utilities.rank_zero import rank_zero_only
from rich.console import Console

import pspikessm.data.progress as progress_module
from pspikessm.data.progress import progress


def test_log_lines_every_ten_percent_when_not_a_terminal(caplog):
    with caplog.at_level(logging.INFO, logger="pspikessm"), progress("Work", 200) as advance:
        for _ in range(200):
            advance(1)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "Work: 0 of 200"
    assert lines[1:] == [f"Work: {10 * k}% ({20 * k} of 200)" for k in range(1, 11)]


def test_bytes_and_unknown_totals(caplog):
    with caplog.at_level(logging.INFO, logger="pspikessm"):
        with progress("Download", 4_000_000, "bytes") as advance:
            advance(4_000_000)
        with progress("Stream", None, "bytes") as advance:
            advance(1_500_000)
    lines = [r.getMessage() for r in caplog.records]
    assert "Download: 100% (4.0 MB of 4.0 MB)" in lines
    assert lines[-2:] == ["Stream: 0.0 MB", "Stream: done (1.5 MB)"]


def test_a_terminal_gets_a_rich_bar(monkeypatch, caplog):
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    monkeypatch.setattr(progress_module, "Console", lambda **kwargs: terminal)
    with caplog.at_level(logging.INFO, logger="pspikessm"), progress("Decoding", 50) as advance:
        advance(50)
    assert "Decoding" in screen.getvalue() and "50/50" in screen.getvalue()
    assert not caplog.records  # the bar replaces the log lines


def test_other_ranks_show_nothing(monkeypatch, caplog):
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    with caplog.at_level(logging.INFO, logger="pspikessm"), progress("Work", 10) as advance:
        advance(10)
    assert not caplog.records
