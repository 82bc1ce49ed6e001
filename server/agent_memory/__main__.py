"""Run `python -m agent_memory` like the `agent-memory` command."""

from agent_memory.cli.main import main

raise SystemExit(main())
