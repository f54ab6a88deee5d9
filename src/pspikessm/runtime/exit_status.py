"""The exit status of a stopped run, in a module that imports nothing (the entry point reads it
before torch and Lightning are imported)."""

#: Exit status of a run stopped by a signal (EX_TEMPFAIL, sysexits.h: "try again later"). The
#: newest state is in ``last.ckpt``; ``fit --ckpt_path last`` continues it.
PREEMPTED_EXIT_CODE = 75
