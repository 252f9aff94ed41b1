"""``python -m langchain_metaso.mcp``: see the package's docstring."""

import sys

from langchain_metaso.mcp import main

sys.exit(main())
