"""``python -m datamill.llm.simulator``: run the provider simulator until killed (see `main`)."""

from datamill.llm.simulator.cli import main

main()
