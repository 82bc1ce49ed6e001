"""The MCP face: tools, resources, prompts, the lifespan, and streamable HTTP with its tokens."""
