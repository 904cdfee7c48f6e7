"""The control API: the only door into a running fleet (console, CLI, tests)."""
