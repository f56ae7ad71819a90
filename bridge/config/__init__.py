"""Configuration: settings from env and YAML, validated once; durations; secret values."""
