"""Energy cost tables: picojoules per operation, versioned, stored with every record.

The built-in table `45nm` holds the numbers the SNN literature uses for 45 nm CMOS
(Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
32-bit floating point): a multiply-accumulate costs 3.7 pJ (multiply) + 0.9 pJ (add) =
4.6 pJ and an accumulate 0.9 pJ.

    energy_pj = effective_macs * pj_per_mac + effective_acs * pj_per_ac

A table is data: changing any number makes a new version, so a record always says which
costs its energy was computed with and tables can refuse to mix versions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class EnergyTable:
    """Cost of one multiply-accumulate and one accumulate, in pJ."""

    name: str
    version: str
    pj_per_mac: float
    pj_per_ac: float
    source: str

    def energy_pj(self, macs: float, acs: float) -> float:
        """Energy of `macs` multiply-accumulates and `acs` accumulates."""
        if macs < 0 or acs < 0:
            raise ValueError(f"operation counts must be >= 0, got macs={macs}, acs={acs}")
        return macs * self.pj_per_mac + acs * self.pj_per_ac

    def as_record(self) -> dict[str, Any]:
        """What a record stores: the table's name, version and costs."""
        entry = asdict(self)
        entry.pop("source")
        return entry


CMOS_45NM = EnergyTable(
    name="45nm", version="1", pj_per_mac=4.6, pj_per_ac=0.9,
    source="Horowitz, ISSCC 2014: 45 nm, 32-bit float; MAC = 3.7 pJ mult + 0.9 pJ add",
)

ENERGY_TABLES: dict[str, EnergyTable] = {CMOS_45NM.name: CMOS_45NM}
DEFAULT_ENERGY_TABLE = CMOS_45NM
