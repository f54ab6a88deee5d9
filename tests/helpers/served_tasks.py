"""Task data modules whose public files come from the local test server (for tests that run
the CLI in other processes, where monkeypatching cannot reach)."""

from __future__ import annotations

import os
from dataclasses import replace

from pspikessm.data import ListOpsDataModule
from pspikessm.data.download import LRA_RELEASE, Resource

#: Environment variable holding the test server's URL of the LRA release.
URL_VARIABLE = "PSPIKESSM_TEST_LRA_URL"


class ServedListOps(ListOpsDataModule):
    """ListOps with the LRA release downloaded from ``$PSPIKESSM_TEST_LRA_URL``."""

    @property
    def resources(self) -> tuple[Resource, ...]:  # type: ignore[override]
        return (replace(LRA_RELEASE, url=os.environ[URL_VARIABLE]),)
