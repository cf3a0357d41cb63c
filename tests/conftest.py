"""Shared pytest configuration. The emulators' fixtures live in the test kit (``hpa_testkit``), shared with the sandbox."""

pytest_plugins = [
    "hpa_testkit.pytest_kube",
    "hpa_testkit.pytest_aws",
]
