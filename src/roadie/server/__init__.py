"""The running roadie process. Only the CLI (and tests) import this package."""
