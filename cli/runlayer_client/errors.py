"""Errors the CLI reports as one readable line, each with the exit code scripts can test."""

from __future__ import annotations

OK = 0
FAILURE = 1
USAGE = 2
NOT_LOGGED_IN = 3  # no key, or the server refused it
NOT_FOUND = 4  # unknown connector, or not assigned to you
UNREACHABLE = 5  # the Runlayer server could not be reached

EXIT_CODES_HELP = """exit codes:
  0  success
  1  failure (see the message)
  2  bad usage
  3  not logged in, or the API key was refused
  4  unknown connector, or not available to you
  5  the Runlayer server could not be reached"""


class CliError(Exception):
    def __init__(self, message: str, code: int = FAILURE) -> None:
        super().__init__(message)
        self.message, self.code = message, code
