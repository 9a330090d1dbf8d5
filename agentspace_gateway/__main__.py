import sys

from agentspace_gateway.cli import main

sys.exit(main())
