"""Entry point of every SDK agent process (see ``fleet.agent.runner``)."""

from __future__ import annotations

import sys

from fleet.agent.runner import main

sys.exit(main())
