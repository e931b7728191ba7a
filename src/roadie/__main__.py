import sys

from roadie.cli import main

sys.exit(main())
