import sys

from ocrflow.cli import main

sys.exit(main())
