"""The unit of work: a :class:`Chunk` of consecutive input records (read by :func:`read_chunks`, in input order)
and the :class:`ChunkResult` a worker returns for it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from confgen.errors import InputError
from confgen.io import iter_inputs
from confgen.library.options import RunOptions


@dataclass
class Chunk:
    """Input records ``[start, stop)`` of the input file, the unit of work of a worker.

    Attributes:
        number: position of the chunk in the run (0, 1, ...).
        start: index of its first input record.
        stop: one past the index of its last input record.
        records: the usable :class:`confgen.io.InputRecord` of the range.
        counts: conformers per record.
        errors: ``(input index, line)`` per unusable record of the range (found while reading).
        warnings: lines about records of the range (unspecified stereo resolved).
        salts: records of the range whose extra fragments were removed.
    """

    number: int
    start: int
    stop: int
    records: list = field(default_factory=list)
    counts: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    salts: int = 0

    def __getstate__(self):  # Mols travel with their properties (fragments removed, stereo policy, ...)
        from rdkit import Chem

        state = dict(self.__dict__)
        state["records"] = [replace(r, mol=r.mol.ToBinary(Chem.PropertyPickleOptions.AllProps))
                            for r in self.records]
        return state

    def __setstate__(self, state):
        from rdkit import Chem

        state["records"] = [replace(r, mol=Chem.Mol(r.mol)) for r in state["records"]]
        self.__dict__.update(state)



@dataclass
class ChunkResult:
    """What a worker returns for a :class:`Chunk`: its SDF text (records in input order) and counters."""

    number: int
    start: int
    stop: int
    sdf: str
    conformers: int
    molecules: int
    errors: list
    warnings: list
    counters: dict
    salts: int
    phase_work: dict
    phase_seconds: dict
    pid: int
    peak_rss_mb: float
    model_loads: int
    seconds: float



def read_chunks(input_path: Path, start: int, stop: int, chunk_size: int, options: RunOptions, first_number: int):
    """Chunks of ``chunk_size`` consecutive input records in ``[start, stop)``."""
    from confgen.io import resolve_stereo

    chunk = Chunk(number=first_number, start=start, stop=start)
    for item in iter_inputs(input_path, start=start, stop=stop, fragments=options.fragments,
                            count_column=options.count_column):
        index = chunk.stop
        if isinstance(item, InputError):
            chunk.errors.append((index, str(item)))
        else:
            try:
                n = options.num_confs_for(item)
                mols, note = resolve_stereo(item.mol, options.stereo, max_isomers=options.max_stereoisomers,
                                            source=item.source, label=item.smiles, name=item.name)
            except InputError as exc:
                chunk.errors.append((index, str(exc)))
            else:
                if note:
                    chunk.warnings.append(note)
                chunk.salts += bool(getattr(item, "removed_fragments", None))
                for k, mol in enumerate(mols):
                    name = item.name if len(mols) == 1 else f"{item.name}_iso{k + 1}"
                    chunk.records.append(replace(item, mol=mol, name=name))
                    chunk.counts.append(n)
        chunk.stop += 1
        if chunk.stop - chunk.start == chunk_size:
            yield chunk
            chunk = Chunk(number=chunk.number + 1, start=chunk.stop, stop=chunk.stop)
    if chunk.stop > chunk.start:
        yield chunk
