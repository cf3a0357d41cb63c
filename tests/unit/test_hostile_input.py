"""``plan`` and ``disruption`` on input built to hurt them: invalid and absurd quantities, YAML alias bombs, deep nesting,
100 MB files. Each is refused early with exit 2 and one line naming the input (the pod and field for a bad request), never
a Python traceback, within a bounded time and memory. The hostile files are generated here, in the test's own directory.

The commands run in a child process: a segmentation fault, a traceback or a runaway allocation then fails the test
instead of the test session, and the child's own CPU time and peak RSS are measured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = str(ROOT / "examples" / "cluster.json")
SEED = [str(ROOT / "examples" / "seed" / n) for n in ("nodeclass.yaml", "nodepool.yaml", "pods.yaml")]
SECONDS = 30.0  # a generous wall-clock bound on a loaded machine; the CPU bound below is the tight one
CPU_SECONDS = 5.0
PEAK_RSS_MB = 400.0

# Runs the CLI in a grandchild and reports the grandchild's own CPU seconds and peak RSS (wait4) on the last line.
RUNNER = """
import os, subprocess, sys
proc = subprocess.Popen([sys.executable, "-c", "import sys; from hyperpod_autoscaler.cli import main; sys.exit(main())",
                         *sys.argv[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read().decode(errors="replace")
_, status, usage = os.wait4(proc.pid, 0)
sys.stderr.write(err + "\\n" + f"{usage.ru_utime + usage.ru_stime} {usage.ru_maxrss / 1024}" + "\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def cli(*args: str) -> tuple[int, str, float, float]:
    """(exit code, stderr, CPU seconds, peak RSS MB) of ``hyperpod-autoscaler ARGS``."""
    env = {**os.environ, "HPA_DEBUG": ""}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, timeout=SECONDS, env=env, check=False
    )
    *lines, usage = done.stderr.rstrip("\n").split("\n")
    cpu, rss = (float(x) for x in usage.split())
    return done.returncode, "\n".join(lines).strip(), cpu, rss


def assert_refused(code: int, err: str, cpu: float, rss: float, *expected: str) -> None:
    assert code == 2, (code, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for text in expected:
        assert text in err, err
    assert cpu < CPU_SECONDS, f"{cpu:.1f} s of CPU"
    assert rss < PEAK_RSS_MB, f"peak RSS {rss:.0f} MB"


def pod_yaml(name: str, requests: str) -> str:
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: ml}}\n"
        f"spec:\n  containers:\n  - name: c\n    resources: {{requests: {requests}}}\n"
    )


def alias_bomb(levels: int = 9) -> str:
    """ "Billion laughs" as Kubernetes objects: a List of Lists, each holding nine aliases of the one below, down to a
    Pod. 10 nodes per level in the file; 9^levels pods once expanded (387,420,489 at nine levels)."""
    lines = ["apiVersion: v1", "kind: List", "items:", "- &l0 {apiVersion: v1, kind: Pod, metadata: {name: lol}}"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"- &l{level} {{apiVersion: v1, kind: List, items: [{refs}]}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("requests", "field"),
    [
        ("{cpu: '1', memory: 1e400}", "memory: '1e400' is larger than the largest quantity"),
        ("{cpu: '1', memory: 1e10000000}", "memory: '1e10000000' is larger than the largest quantity"),
        ("{cpu: '-2'}", "cpu: '-2' must be greater than or equal to 0"),
        ("{nvidia.com/gpu: lots}", "nvidia.com/gpu: 'lots' is not a quantity"),
    ],
    ids=["overflow", "huge-exponent", "negative", "non-numeric"],
)
@pytest.mark.parametrize("command", ["plan", "disruption"])
def test_an_invalid_request_names_the_pod_and_field(tmp_path: Path, command: str, requests: str, field: str) -> None:
    bad = tmp_path / "pods.yaml"
    bad.write_text(pod_yaml("poison", requests))
    result = cli(command, "--cluster", CLUSTER, "-f", SEED[0], "-f", SEED[1], "-f", str(bad))
    assert_refused(*result, f"{command}: Pod ml/poison: field spec.containers[0].resources.requests: {field}")


def test_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    assert_refused(*cli("plan", "--cluster", CLUSTER, "-f", str(bomb)), "bomb.yaml", "an alias bomb")


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.write_text("apiVersion: v1\nkind: List\nitems: &items\n- {apiVersion: v1, kind: List, items: *items}\n")
    assert_refused(*cli("plan", "--cluster", CLUSTER, "-f", str(loop)), "loop.yaml", "recursive")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("command", ["plan", "disruption"])
def test_deep_nesting_is_refused(tmp_path: Path, command: str, suffix: str) -> None:
    deep = tmp_path / f"deep{suffix}"
    depth = 200_000  # libyaml's own composer crashes the process (SIGSEGV) at about 100,000 levels
    deep.write_text(
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "deep"}, "x": ' + "[" * depth + "]" * depth + "}"
    )
    result = cli(command, "--cluster", CLUSTER, "-f", str(deep))
    assert_refused(*result, f"deep{suffix}", "nested")


def test_a_deep_cluster_file_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / "cluster.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert_refused(*cli("plan", "--cluster", str(deep), "-f", SEED[2]), "DescribeCluster", "nested too deeply")


def test_a_100_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    chunk = ("---\n" + pod_yaml("p", "{cpu: 100m}")).encode()
    with big.open("wb") as handle:
        for _ in range(100 * 2**20 // len(chunk) + 1):
            handle.write(chunk)
    assert big.stat().st_size >= 100 * 2**20
    assert_refused(*cli("plan", "--cluster", CLUSTER, "-f", str(big)), "big.yaml", "larger than the limit of 32 MiB")
    # Several files share the one limit.
    half = tmp_path / "half.yaml"
    half.write_bytes(chunk * (2**20 // len(chunk)))
    result = cli("disruption", "--cluster", CLUSTER, "-f", str(half), "-f", str(half), "--max-input-mb", "1.5")
    assert_refused(*result, "half.yaml", "makes the input files larger than the limit of 1.5 MiB together")


def test_input_that_is_not_text_is_refused(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 64)
    assert_refused(*cli("plan", "--cluster", CLUSTER, "-f", str(binary)), "binary.yaml", "not UTF-8")


def test_an_alias_bomb_catalog_is_refused(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    lines = ["t0: &t0 [{name: ml.g6.xlarge, pricePerHour: 1.0}]"]
    lines += [f"t{i}: &t{i} [" + ", ".join([f"*t{i - 1}"] * 9) + "]" for i in range(1, 10)]
    catalog.write_text("\n".join(lines) + "\ninstanceTypes: *t9\n")
    result = cli("plan", "--cluster", CLUSTER, "-f", SEED[2], "--catalog", str(catalog))
    assert_refused(*result, "catalog.yaml", "an alias bomb")


def test_a_load_pauses_the_cycle_collector_and_restores_it_whatever_happens() -> None:
    import gc

    from hyperpod_autoscaler.domain.documents import load_documents
    from hyperpod_autoscaler.domain.errors import InvalidObject

    assert gc.isenabled()
    assert load_documents("a: 1\n---\nb: [2, 3]\n") == [{"a": 1}, {"b": [2, 3]}]
    assert gc.isenabled()
    with pytest.raises(InvalidObject):
        load_documents("a: [1, 2\n", "bad.yaml")
    assert gc.isenabled(), "restored after a refused document"
    gc.disable()
    try:
        load_documents('{"a": 1}')
        assert not gc.isenabled(), "a collector paused by the caller stays paused"
    finally:
        gc.enable()
