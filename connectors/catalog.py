"""The catalog that ships with Runlayer: real, published MCP servers an admin can add in one step."""

from __future__ import annotations

from typing import Any

from .models import CatalogEntry, DeploymentMode, Transport

SEED_CATALOG: list[dict[str, Any]] = [
    {
        "slug": "mcp-server-time",
        "name": "Time",
        "description": "Current time and time-zone conversions (the reference server, run with uvx).",
        "homepage": "https://pypi.org/project/mcp-server-time/",
        "deployment_mode": DeploymentMode.LOCAL,
        "transport": Transport.STDIO,
        "url": "uvx",
        "args": ["mcp-server-time"],
    },
    {
        "slug": "mcp-server-fetch",
        "name": "Fetch",
        "description": "Fetch a web page and convert it to markdown (the reference server, run with uvx).",
        "homepage": "https://pypi.org/project/mcp-server-fetch/",
        "deployment_mode": DeploymentMode.LOCAL,
        "transport": Transport.STDIO,
        "url": "uvx",
        "args": ["mcp-server-fetch"],
        "inherit_env": ["HTTPS_PROXY", "HTTP_PROXY"],
    },
    {
        "slug": "mcp-server-git",
        "name": "Git",
        "description": "Read and search a local git repository (the reference server, run with uvx).",
        "homepage": "https://pypi.org/project/mcp-server-git/",
        "deployment_mode": DeploymentMode.LOCAL,
        "transport": Transport.STDIO,
        "url": "uvx",
        "args": ["mcp-server-git"],
    },
    {
        "slug": "server-everything",
        "name": "Everything",
        "description": "The MCP test server that exercises every protocol feature (run with npx).",
        "homepage": "https://www.npmjs.com/package/@modelcontextprotocol/server-everything",
        "deployment_mode": DeploymentMode.LOCAL,
        "transport": Transport.STDIO,
        "url": "npx",
        "args": ["-y", "@modelcontextprotocol/server-everything"],
    },
    {
        "slug": "server-filesystem",
        "name": "Filesystem",
        "description": "Read and write files under the allowed directories given as arguments (run with npx).",
        "homepage": "https://www.npmjs.com/package/@modelcontextprotocol/server-filesystem",
        "deployment_mode": DeploymentMode.LOCAL,
        "transport": Transport.STDIO,
        "url": "npx",
        "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
    },
]


def catalog_seed() -> int:
    """Create or refresh the shipped catalog entries; returns how many there are."""
    for item in SEED_CATALOG:
        fields = {"is_official": True, "args": [], "env": {}, "inherit_env": [], **item}
        slug = fields.pop("slug")
        CatalogEntry.objects.update_or_create(slug=slug, defaults=fields)
    return len(SEED_CATALOG)
