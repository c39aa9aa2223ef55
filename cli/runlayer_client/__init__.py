"""The self-hosted Runlayer CLI (``runlayer``)."""

__version__ = "0.1.0"
