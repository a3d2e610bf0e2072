"""Run-level judge configuration: flags, config files, the environment, and what is never accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigve.cli.main import build_parser
from aigve.cli.run import merge_run_options
from aigve.errors import UsageError
from aigve.judges.base import JudgeConfig


def opts(*argv: str) -> dict:
    return merge_run_options(
        build_parser().parse_args(["run", "x", "--out", "o", "--metrics", "vqascore", *argv])
    )


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("judge:\n  backend: endpoint\n  model: from-file\n  concurrency: 2\n")
    o = opts(
        "--config", str(cfg), "--judge-model", "from-flag", "--judge-frames", "3", "--judge-price", "1,2"
    )
    assert o["judge"] == {
        "backend": "endpoint",
        "model": "from-flag",
        "concurrency": 2,
        "frames": 3,
        "price": "1,2",
    }
    assert opts()["judge"] is None


def test_keys_come_from_the_environment_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("judge:\n  api_key: test-key-in-a-file\n")
    with pytest.raises(UsageError, match="OPENAI_API_KEY"):
        opts("--config", str(cfg))
    monkeypatch.setenv("OTHER_KEY", "test-key-other")
    assert opts("--judge-api-key-env", "OTHER_KEY")["judge"]["api_key"] == "test-key-other"
    with pytest.raises(UsageError, match="NOT_SET_HERE"):
        opts("--judge-api-key-env", "NOT_SET_HERE")
    with pytest.raises(UsageError, match="not taken on the command line") as e:  # no flag takes the key
        opts("--judge-api-key", "test-key-x")
    assert "test-key-x" not in str(e.value)
    with pytest.raises(UsageError) as e:  # a key given where a variable name goes is not echoed
        opts("--judge-api-key-env", "test-key-x-1")
    assert "test-key-x-1" not in str(e.value)


def test_resolution_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AIGVE_JUDGE", "AIGVE_JUDGE_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    assert JudgeConfig().resolved().backend is None
    monkeypatch.setenv("AIGVE_JUDGE_MODEL", "qwen")
    cfg = JudgeConfig().resolved()
    assert (cfg.backend, cfg.model) == ("endpoint", "qwen")
    monkeypatch.setenv("AIGVE_JUDGE", "local")
    assert JudgeConfig().resolved().backend == "local"
    with pytest.raises(UsageError, match="unknown judge backend"):
        JudgeConfig(backend="cloud").resolved()
    with pytest.raises(UsageError, match="concurrency"):
        JudgeConfig(backend="endpoint", model="m", concurrency=0).resolved()
    with pytest.raises(UsageError, match="unknown judge setting"):
        JudgeConfig.from_any({"modle": "m"})
    with pytest.raises(UsageError, match="USD per million"):
        JudgeConfig.from_any({"price": "cheap"})
    cfg = JudgeConfig.from_any({"backend": "endpoint", "api_key": "test-key-secret", "price": [1, 2]})
    assert cfg is not None and cfg.price == (1.0, 2.0)
    assert "test-key-secret" not in repr(cfg) and "api_key" not in cfg.public()
