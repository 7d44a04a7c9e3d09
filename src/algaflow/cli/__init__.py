"""Command line: thin, parses, calls, prints."""
