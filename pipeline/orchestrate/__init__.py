"""Running jobs on Prefect's machinery: schedules (``narrate serve``), work pools and workers
(``narrate deploy``), limits shared across processes, run artifacts, and watch mode.

Nothing here is a stage: stages never import Prefect, and these modules import it only where
they talk to a server.
"""
