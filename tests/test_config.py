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


def test_relative_init_from_is_resolved_like_the_data_path(tmp_path, monkeypatch):
    sub = tmp_path / "cfgs"
    sub.mkdir()
    (sub / "c.yaml").write_text("train:\n  init_from: ../runs/base.pt\n")
    monkeypatch.chdir(REPO)
    assert load_config(sub / "c.yaml").train.init_from == str(tmp_path / "runs" / "base.pt")
    cfg = load_config(sub / "c.yaml", overrides=["train.init_from=x/best.pt"])
    assert cfg.train.init_from == str(REPO / "x" / "best.pt")
    shipped = load_config(REPO / "configs" / "edm_finetune_clofnet.yaml")
    assert Path(shipped.train.init_from).is_file()  # the issue-6 model it fine-tunes


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


# ------------------------------------------------------------------------------------------- sampler presets
def test_auto_preset_chooses_edm_for_relaxed_drug_size_molecules_fast_for_small_and_refine_unrelaxed():
    from confgen.config import SAMPLER_PRESETS, resolve_preset
    from confgen.generation import GenerationRequest, progress_budgets

    auto = resolve_preset("auto")
    large, small, raw = auto.choices()
    assert small is SAMPLER_PRESETS["fast"] and raw is SAMPLER_PRESETS["refine"]
    assert large.small_preset is None and large == SAMPLER_PRESETS["edm"]  # edm's settings and model
    assert auto.for_molecule(13, "mmff") == large
    assert auto.for_molecule(12, "mmff") is small
    assert auto.for_molecule(40, "none") is raw and auto.for_molecule(5, "none") is raw
    assert resolve_preset("auto", {"raw_preset": None}).for_molecule(40, "none") is small
    assert SAMPLER_PRESETS["edm"].for_molecule(5, "none") is SAMPLER_PRESETS["edm"]  # no choice: itself
    with pytest.raises(ConfgenError, match="raw_preset"):
        resolve_preset("edm", {"raw_preset": "fast"})
    assert raw.evals_per_sample <= 50 and raw.init == "etkdg" and raw.model == "refine"  # the shipped refiner
    # the bar's budget covers every choice: fast and refine embed 2 x, all sample and relax 1 x
    assert progress_budgets([3, 5], auto) == {"embedding": 16, "sampling": 8, "relaxing": 8, "writing": 0}
    # the network-off ablation of a per-molecule choice is that of its ETKDG-seeded choice
    assert GenerationRequest([], [], preset="auto", network=False).preset == small.replace(noise_fallback_levels=0)
    with pytest.raises(ConfgenError, match="small_preset"):
        resolve_preset("edm", {"small_preset": "slow"})
    with pytest.raises(ConfgenError, match="chooses per molecule"):
        resolve_preset("edm", {"small_preset": "auto"}).choices()
    # sampler settings are overridden on one of the two presets, by name; the choice itself on auto
    with pytest.raises(ConfgenError, match="--preset fast"):
        resolve_preset("auto", {"num_levels": 8})
    assert resolve_preset("auto", {"small_max_heavy_atoms": 20}).for_molecule(18, "mmff").init == "etkdg"


def test_every_builtin_preset_is_typed_and_overrides_are_checked():
    import dataclasses

    from confgen.config import SAMPLER_PRESETS, SamplerPreset, parse_preset_overrides, resolve_preset
    from confgen.options import DEFAULT_PRESET, PRESET_NAMES

    assert tuple(SAMPLER_PRESETS) == PRESET_NAMES and DEFAULT_PRESET in PRESET_NAMES
    for name, preset in SAMPLER_PRESETS.items():
        assert isinstance(preset, SamplerPreset) and resolve_preset(name) is preset, name
    assert resolve_preset(None) is SAMPLER_PRESETS[DEFAULT_PRESET]
    p = resolve_preset("fast", parse_preset_overrides(["steps_per_level=7", "sigma_max=null", "method=pc"]))
    assert p == dataclasses.replace(SAMPLER_PRESETS["fast"], steps_per_level=7, sigma_max=None, method="pc")
    assert p.to_dict() == {**SAMPLER_PRESETS["fast"].to_dict(), "steps_per_level": 7, "sigma_max": None}
    assert resolve_preset("fast", {"sigma_max": 1}).sigma_max == 1.0  # int widened to float, as in the config
    with pytest.raises(ConfgenError, match="unknown sampler parameter"):
        resolve_preset("fast", {"step": 3})
    with pytest.raises(ConfgenError, match="unknown sampler preset"):
        resolve_preset("slow")
    with pytest.raises(ConfgenError, match="eps"):
        resolve_preset("fast", {"eps": -1.0})
    with pytest.raises(ConfgenError, match="num_levels"):
        resolve_preset("fast", {"num_levels": 2.5})
    with pytest.raises(ConfgenError, match="final_denoise"):
        resolve_preset("fast", {"final_denoise": 1})
    with pytest.raises(ConfgenError, match="method"):
        resolve_preset("fast", {"method": "euler"})
    with pytest.raises(ConfgenError, match="oversample"):
        resolve_preset("fast", {"oversample": 0.5})
    with pytest.raises(ConfgenError, match="retry_step_factor"):
        resolve_preset("fast", {"retry_step_factor": 1.5})
    with pytest.raises(ConfgenError, match="KEY=VALUE"):
        parse_preset_overrides(["eps"])
    with pytest.raises(ConfgenError, match="SamplerPreset"):
        resolve_preset({"base": "fast"})


def test_confgf_preset_is_faithful_and_calls_are_counted():
    from confgen.config import resolve_preset

    p = resolve_preset("confgf")
    assert (p.num_levels, p.steps_per_level, p.init, p.method) == (50, 100, "noise", "ald")
    assert (p.sigma_max, p.sigma_min) == (10.0, 0.01)
    # ConfGF: step = 2.4e-6 (sigma/sigma_L)^2 with x + step*s + sqrt(2 step) z, i.e. eps = 2 * 2.4e-6
    assert p.eps == pytest.approx(2 * 2.4e-6)
    assert p.evals_per_sample == 5001
    assert resolve_preset("fast").evals_per_sample < 100
    assert resolve_preset("edm").evals_per_sample == 11 == resolve_preset("edm-select").evals_per_sample  # <= 50
    fb = resolve_preset("fast").noise_fallback()
    assert (fb.method, fb.init, fb.sigma_max, fb.num_levels, fb.steps_per_level) == ("pc", "noise", None, 50, 0)
    assert resolve_preset("confgf").noise_fallback() is None
