"""Shared pytest configuration. The emulators' fixtures live in the test kit (``hpa_testkit``), shared with the sandbox."""

pytest_plugins = [
    "hpa_testkit.pytest_kube",
    "hpa_testkit.pytest_aws",
]


def pytest_configure() -> None:
    # DynamoDB's conditional writes are atomic; moto's are not without this (hpa_testkit.aws.server): the unit tests
    # that race writers against moto in process rely on it as the product relies on DynamoDB
    from hpa_testkit.aws.server import atomic_dynamodb_items

    atomic_dynamodb_items()
