import sys

from ocrflow.handlers.cli import main

sys.exit(main())
