"""The ``confgen`` command line itself: --help without torch, help texts, device flags."""

import subprocess
import sys

import pytest

from confgen.cli import COMMANDS, build_parser, main


@pytest.mark.parametrize("args", [["--help"], ["sample", "--help"]])
def test_help_does_not_import_torch(args):
    code = ("import sys\nfrom confgen.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('torch', 'rdkit', 'numpy') if m in sys.modules)\nprint(heavy)\n" % args)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out
    assert "usage: confgen" in out


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_option_states_its_default_twice(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for option_help in text.split(" -")[1:]:
        assert option_help.lower().count("(default:") <= 1, option_help


def test_train_accepts_the_same_device_strings_as_sample():
    parser = build_parser()
    for device in ("cpu", "cuda", "cuda:1", "auto"):
        assert parser.parse_args(["train", "c.yaml", "--device", device]).device == device
        if device != "auto":
            assert parser.parse_args(["sample", "x.smi", "-o", "y.sdf", "--device", device]).device == device
