"""`python -m exporter.agent`: the same as `stacksense-agent`."""

import sys

from exporter.agent.cli import main

sys.exit(main())
