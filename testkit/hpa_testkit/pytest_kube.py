"""pytest fixtures for the Kubernetes API emulator: one server per test session, emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hpa_testkit.kube import KubeEmulator


@pytest.fixture(scope="session")
def kube_server() -> Iterator[KubeEmulator]:
    emu = KubeEmulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def kube(kube_server: KubeEmulator) -> KubeEmulator:
    kube_server.reset()
    return kube_server


@pytest.fixture
def kubeconfig(kube: KubeEmulator, tmp_path: Path) -> str:
    return kube.write_kubeconfig(str(tmp_path / "kubeconfig"), context="emulator")
