"""Shared pytest configuration: the emulators' fixtures live in the test kit (also used by the sandbox)."""

pytest_plugins = [
    "hpa_testkit.pytest_kube",
    "hpa_testkit.pytest_aws",
]
