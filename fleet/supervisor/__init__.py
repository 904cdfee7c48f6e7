"""The supervisor: agent processes, their logs and their lifecycle.

Importing this package must stay cheap: the orphan watchdog runs as
``python -m fleet.supervisor.watchdog`` and should start in milliseconds.
"""
