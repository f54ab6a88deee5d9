"""Run safety: everything that makes a run survive a shared cluster, as callbacks and helpers.

Preemption (``last.ckpt`` and exit 75 on SIGTERM/SIGUSR1), ``last.ckpt`` at every save point,
the non-finite stop, the run's config records, the run folder and ``--ckpt_path last``, the
resume checks, atomic checkpoint writing and the spike stream in checkpoints. The CLI turns
them on in one place (:mod:`pspikessm.runtime.registration`); the model and the data know
nothing of them. Lightning's private names are used only in this package, each next to the
Lightning version it was checked with.
"""
