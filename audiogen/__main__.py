import sys

from audiogen.cli import main

sys.exit(main())
