import sys

from sieveopt.cli.main import main

sys.exit(main())
