"""HTTP delivery: response parsing, the client, one attempt, endpoint slots."""
