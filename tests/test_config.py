"""Config loading: defaults, relative paths, overrides, and errors that name the key and the file."""

from pathlib import Path

import pytest

from confgen.cli import main as cli_main
from confgen.config import Config, load_config
from confgen.errors import ConfgenError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load_and_build(path):
    from confgen.models import build_model

    cfg = load_config(path)
    assert Path(cfg.data.path).is_absolute()
    n = sum(p.numel() for p in build_model(cfg).parameters())
    assert n < 5_000_000


def test_expected_configs_are_shipped():
    names = {p.stem for p in CONFIGS}
    assert {"tiny_egnn", "tiny_clofnet", "qm9_egnn", "qm9_clofnet", "drugs_clofnet"} <= names


def test_relative_data_path_is_resolved_against_the_config_file(tmp_path, monkeypatch):
    sub = tmp_path / "cfgs"
    sub.mkdir()
    (sub / "c.yaml").write_text("data:\n  path: ../data/ds\nmodel:\n  backbone: egnn\n")
    monkeypatch.chdir(REPO)
    cfg = load_config(sub / "c.yaml")
    assert cfg.data.path == str(tmp_path / "data" / "ds")
    assert cfg.model.backbone == "egnn"
    assert cfg.train == Config().train  # untouched sections keep their defaults
    # --set paths are relative to the working directory
    cfg = load_config(sub / "c.yaml", overrides=["data.path=elsewhere"])
    assert cfg.data.path == str(REPO / "elsewhere")


def test_overrides_are_typed():
    cfg = load_config(REPO / "configs" / "tiny_egnn.yaml",
                      overrides=["train.lr=1e-3", "train.max_steps=7", "model.cutoff=0", "data.max_confs=null",
                                 "model.backbone=clofnet"])
    assert cfg.train.lr == 1e-3 and isinstance(cfg.model.cutoff, float) and cfg.model.cutoff == 0.0
    assert cfg.train.max_steps == 7 and cfg.data.max_confs is None and cfg.model.backbone == "clofnet"


@pytest.mark.parametrize("text, match", [
    ("train:\n  learning_rate: 0.1\n", r"bad\.yaml: unknown config key 'train\.learning_rate'"),
    ("trian:\n  lr: 0.1\n", r"bad\.yaml: unknown config section 'trian'"),
    ("train:\n  batch_size: 3.5\n", r"bad\.yaml: config key 'train\.batch_size' must be int, got 3\.5"),
    ("model:\n  hidden_dim: true\n", r"bad\.yaml: config key 'model\.hidden_dim' must be int"),
    ("train:\n  lr: fast\n", r"bad\.yaml: config key 'train\.lr' must be float"),
    ("train: [1, 2]\n", r"bad\.yaml: section 'train' must be a mapping"),
    ("train:\n  lr: [0.1\n", r"bad\.yaml: not valid YAML"),
])
def test_bad_config_names_key_and_file(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfgenError, match=match):
        load_config(path)


def test_bad_override_names_the_key():
    with pytest.raises(ConfgenError, match=r"train\.epochz"):
        load_config(REPO / "configs" / "tiny_egnn.yaml", overrides=["train.epochz=3"])
    with pytest.raises(ConfgenError, match=r"train\.batch_size.*must be int"):
        load_config(REPO / "configs" / "tiny_egnn.yaml", overrides=["train.batch_size=big"])
    with pytest.raises(ConfgenError, match="section.key=value"):
        load_config(REPO / "configs" / "tiny_egnn.yaml", overrides=["lr"])


def test_cli_reports_config_errors_on_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  backbone: egnn\n  widht: 3\n")
    assert cli_main(["train", str(path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.widht" in err[0] and "bad.yaml" in err[0]
    assert cli_main(["train", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml does not exist" in capsys.readouterr().err


def test_unknown_backbone_is_reported(tmp_path):
    from confgen.models import build_model

    cfg = Config()
    cfg.model.backbone = "schnet"
    with pytest.raises(ConfgenError, match="unknown model.backbone 'schnet'"):
        build_model(cfg)
