"""Services: the use cases the Lambda handlers and the CLI call (domain + ports)."""
