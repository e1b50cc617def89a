"""One module per resource kind: its desired state (pure) and how it is converged."""
