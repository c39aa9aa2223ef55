"""ToolGuard: scanners for tool definitions (poisoning) and for call arguments and results (secrets, PII,
prompt injection, hidden characters). Pure functions over plain data; RE2 only, so scanning time is
linear in the input whatever it contains."""
