"""Shared pytest configuration. The emulators' fixtures live in the test kit (``hpa_testkit``), shared with the sandbox;
their plugins are listed here as they land."""

pytest_plugins: list[str] = []
