"""`python -m chaser_pipeline.cli`: the `chaser-pipeline` command."""

import sys

from chaser_pipeline.cli import main

sys.exit(main())
