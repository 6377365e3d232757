"""`python -m chaser_pipeline.emulator`: run the local Chaser emulator."""

import sys

from chaser_pipeline.emulator.server import main

sys.exit(main())
