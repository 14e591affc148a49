import sys

from handlers.cli import main

sys.exit(main())
