import os
import pickle

import pytest
from rdkit import Chem

from confgen.data import safe_pickle
from confgen.errors import ConfgenError


class _Hostile:
    """Unpickling this would run a shell command (the classic pickle attack)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    # hidden inside an otherwise valid torsional-diffusion layout
    path.write_bytes(pickle.dumps({"CCO": [Chem.AddHs(Chem.MolFromSmiles("CCO"))], "x": _Hostile(marker)}))
    with pytest.raises(ConfgenError, match=r"evil\.pkl: unsafe pickle, refused to load (posix|os|nt)\.system"):
        safe_pickle.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    pickle.dumps(eval),  # builtins.eval
    pickle.dumps(os.path.join),
    b"cos\nsystem\n(S'true'\ntR.",  # protocol-0 GLOBAL + REDUCE
])
def test_other_globals_refused(tmp_path, payload):
    with pytest.raises(ConfgenError, match="unsafe pickle"):
        safe_pickle.loads(payload, source="x.pkl")


def test_rdkit_mols_and_containers_round_trip(shared_data):
    data = safe_pickle.load(shared_data / "geom_drugs_train10/true_conformers_train_first_10smis.pkl")
    assert len(data) == 10
    mols = next(iter(data.values()))
    assert isinstance(mols[0], Chem.Mol) and mols[0].GetNumConformers() == 1
    plain = {"a": [1, 2.5, None, True], "b": ("x", b"y"), "c": {1, 2}, "d": frozenset({3}), "e": complex(1, 2)}
    assert safe_pickle.loads(pickle.dumps(plain)) == plain


@pytest.mark.parametrize("content,msg", [(b"", "empty file"), (b"\x80\x04garbage", "corrupted")])
def test_corrupted_and_empty(tmp_path, content, msg):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(ConfgenError, match=f"bad.pkl: {msg}"):
        safe_pickle.load(path)


def test_truncated_real_pickle(tmp_path, shared_data):
    raw = (shared_data / "geom_drugs_train10/true_conformers_train_first_10smis.pkl").read_bytes()
    path = tmp_path / "trunc.pkl"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ConfgenError, match="trunc.pkl: corrupted"):
        safe_pickle.load(path)
