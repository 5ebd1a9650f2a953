"""pyinfra operations: each yields shell for the host, and nothing when the host is right."""
