"""The `webhook-bridge` command: parsing, subcommands, help, terminal output, demo, workers."""
