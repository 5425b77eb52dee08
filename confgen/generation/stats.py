"""Counters of one generation run (:class:`GenerationStats`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class GenerationStats:
    """Counters of one :func:`confgen.generation.generate_conformers` call.

    Attributes:
        molecules: molecules given.
        failed_molecules: molecules that gave no conformer (unusable input, or every conformer dropped).
        requested: conformers asked for.
        written: conformers returned.
        samples: conformers sampled, retries included.
        network_evals: score-network calls x conformers.
        blowups: samples whose dynamics blew up (non-finite or flown apart; retried with a smaller step).
        bad_geometry: samples with a broken or collapsed bond, or outside PoseBusters' bond-length, bond-angle
            and clash limits (:func:`confgen.validity.geometry_bounds`); retried with a smaller step.
        outside_bounds: conformers written although outside those limits (judged on the written coordinates,
            after relaxation; marked ``confgen_posebusters_bounds_ok`` = 0): no retry got inside, and the last
            sample had the right stereo and no broken bond.
        stereo_mirrored: conformers repaired by mirroring.
        stereo_resampled: conformers resampled because of a stereo error a mirror cannot fix.
        amides_turned: secondary amides turned trans in accepted samples (preset ``trans_amides``).
        dropped: conformers given up after ``max_retries`` retries.
        from_noise: conformers sampled from pure noise because ETKDG could not embed their initial guess
            (preset parameter ``noise_fallback_levels``).
        relax_skipped: molecules that MMFF94 has no parameters for (returned unrelaxed).
        relax_reverted: conformers written unrelaxed because MMFF94 minimisation changed their stereo.
        seed: the seed used (drawn at random when none was given).
        warnings: human-readable notes (one line each).
    """

    molecules: int = 0
    failed_molecules: int = 0
    requested: int = 0
    written: int = 0
    samples: int = 0
    network_evals: int = 0
    blowups: int = 0
    bad_geometry: int = 0
    outside_bounds: int = 0
    stereo_mirrored: int = 0
    stereo_resampled: int = 0
    amides_turned: int = 0
    dropped: int = 0
    from_noise: int = 0
    relax_skipped: int = 0
    relax_reverted: int = 0
    seed: int | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for humans."""
        return (f"{self.written}/{self.requested} conformers for {self.molecules - self.failed_molecules}/"
                f"{self.molecules} molecules; {self.repairs()}")

    def repairs(self) -> str:
        """What the checks did: stereo repairs, retries, fallbacks and dropped conformers (one line)."""
        return (f"stereo: {self.stereo_mirrored} mirrored, {self.stereo_resampled} resampled; {self.blowups} "
                f"blow-ups and {self.bad_geometry} broken geometries retried with smaller steps; "
                f"{self.outside_bounds} written outside the PoseBusters bounds; {self.from_noise} sampled from "
                f"noise where ETKDG failed; {self.dropped} conformers dropped"
                + (f"; {self.amides_turned} cis or twisted amides turned trans" if self.amides_turned else "")
                + (f"; {self.relax_reverted} written unrelaxed (MMFF94 changed their stereo)"
                   if self.relax_reverted else ""))

    def counters(self) -> dict[str, int]:
        """The integer counters (every field but ``seed`` and ``warnings``): what runs add up."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("seed", "warnings")}
