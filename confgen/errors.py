"""User-facing errors: the CLI prints these as one line, without a traceback."""


class ConfgenError(Exception):
    """An error caused by user input (a file, a SMILES, a config key); printed as one line."""


class InputError(ConfgenError):
    """One input record (file line, SMILES, SDF record) could not be used.

    Args:
        message: what went wrong.
        source: where the record came from, e.g. ``"mols.smi:12"``.
        smiles: the record's SMILES or name when known.
    """

    def __init__(self, message: str, source: str | None = None, smiles: str | None = None):
        self.message = message
        self.source = source
        self.smiles = smiles
        super().__init__(self.format())

    def format(self) -> str:
        parts = []
        if self.source:
            parts.append(self.source)
        if self.smiles:
            parts.append(repr(self.smiles))
        prefix = " ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message
