"""The supervisor: agent processes, their logs and their lifecycle.

Importing this package must stay cheap: the orphan watchdog runs as
``python -I -S .../watchdog.py`` (a file, stdlib only) and should start in milliseconds.
"""
