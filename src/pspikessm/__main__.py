"""The ``pspikessm`` command: the console script and ``python -m pspikessm``.

Its first act, before torch and Lightning are imported (seconds, on a cluster's shared
filesystem), is a SIGTERM handler: a job stopped during start-up exits with status 75 ("try
again later"), as on every other preemption path, instead of being killed (status 143).
Nothing has been written then. The command's own handler
(:func:`pspikessm.runtime.registration.preemption_exit`) replaces it once it is imported.
This module imports only the standard library, so that nothing comes before the handler.
"""

import os
import signal
from types import FrameType

from pspikessm.runtime.exit_status import PREEMPTED_EXIT_CODE


def _stop_during_start_up(signum: int, frame: FrameType | None) -> None:
    # Mid-import: no exception (an import half done can crash the interpreter's exit).
    name = signal.Signals(signum).name
    message = f"Stopping on {name} during start-up: nothing saved; exit status 75.\n"
    os.write(2, message.encode())
    os._exit(PREEMPTED_EXIT_CODE)


def main() -> None:
    """Install the start-up SIGTERM handler, then run :func:`pspikessm.cli.main`."""
    signal.signal(signal.SIGTERM, _stop_during_start_up)
    from pspikessm.cli import main as command

    command()


if __name__ == "__main__":
    main()
