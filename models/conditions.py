"""Experimental conditions: drug, dose, route, co-treatments, species, preparation, genotype.

A :class:`Condition` is a validated, hashable value. Build one from a readable spec::

    parse_condition("ketamine 10 mg/kg i.p. + rapamycin, mouse")
    parse_condition("ethanol 30 mM bath, cultured neurons, Fmr1 KO")
    parse_condition("ketamine 1 uM bath washout 0.5 h + baclofen")

or from a TOML-style table (``condition_from_mapping``). Every way of stating a condition
goes through the same validation, and every error says what was wrong and how to fix it.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Iterable, Mapping


class ConditionError(ValueError):
    """A condition spec or table is invalid; the message names the field and the fix."""


class Drug(enum.Enum):
    KETAMINE = "ketamine"
    RO25_6981 = "ro25_6981"
    MK801 = "mk801"
    MEMANTINE = "memantine"
    AP5 = "ap5"
    ETHANOL = "ethanol"


class Route(enum.Enum):
    IP = "i.p."
    SC = "s.c."
    IV = "i.v."
    BATH = "bath"


class Species(enum.Enum):
    MOUSE = "mouse"
    RAT = "rat"


class Preparation(enum.Enum):
    IN_VIVO = "in vivo tissue"
    SYNAPTONEUROSOMES = "synaptoneurosomes"
    CULTURED_NEURONS = "cultured neurons"


class Genotype(enum.Enum):
    WILD_TYPE = "wild type"
    FMR1_KO = "Fmr1 KO"
    FMRP_OE = "FMRP OE"


class CoTreatment(enum.Enum):
    RAPAMYCIN = "rapamycin"
    CYCLOHEXIMIDE = "cycloheximide"  # also stands for anisomycin: a protein-synthesis block
    GABAB_ANTAGONIST = "GABABR antagonist"
    BACLOFEN = "baclofen"
    TTX = "TTX"
    BICUCULLINE = "bicuculline"
    ANTI_BDNF = "anti-BDNF"


DRUG_ORDER: tuple[Drug, ...] = tuple(Drug)
ROUTE_ORDER: tuple[Route, ...] = tuple(Route)
SPECIES_ORDER: tuple[Species, ...] = tuple(Species)

_DRUG_ALIASES = {
    "ketamine": Drug.KETAMINE,
    "ket": Drug.KETAMINE,
    "ro25-6981": Drug.RO25_6981,
    "ro 25-6981": Drug.RO25_6981,
    "ro25_6981": Drug.RO25_6981,
    "ro-25-6981": Drug.RO25_6981,
    "mk-801": Drug.MK801,
    "mk801": Drug.MK801,
    "dizocilpine": Drug.MK801,
    "memantine": Drug.MEMANTINE,
    "ap5": Drug.AP5,
    "apv": Drug.AP5,
    "d-ap5": Drug.AP5,
    "ethanol": Drug.ETHANOL,
    "etoh": Drug.ETHANOL,
}
_COTREATMENT_ALIASES = {
    "rapamycin": CoTreatment.RAPAMYCIN,
    "cycloheximide": CoTreatment.CYCLOHEXIMIDE,
    "chx": CoTreatment.CYCLOHEXIMIDE,
    "anisomycin": CoTreatment.CYCLOHEXIMIDE,
    "gababr antagonist": CoTreatment.GABAB_ANTAGONIST,
    "gabab antagonist": CoTreatment.GABAB_ANTAGONIST,
    "cgp55845": CoTreatment.GABAB_ANTAGONIST,
    "cgp 55845": CoTreatment.GABAB_ANTAGONIST,
    "baclofen": CoTreatment.BACLOFEN,
    "ttx": CoTreatment.TTX,
    "tetrodotoxin": CoTreatment.TTX,
    "bicuculline": CoTreatment.BICUCULLINE,
    "anti-bdnf": CoTreatment.ANTI_BDNF,
    "anti bdnf": CoTreatment.ANTI_BDNF,
    "bdnf antibody": CoTreatment.ANTI_BDNF,
}
_ROUTE_ALIASES = {
    "i.p.": Route.IP,
    "ip": Route.IP,
    "intraperitoneal": Route.IP,
    "s.c.": Route.SC,
    "sc": Route.SC,
    "subcutaneous": Route.SC,
    "i.v.": Route.IV,
    "iv": Route.IV,
    "intravenous": Route.IV,
    "bath": Route.BATH,
    "bath application": Route.BATH,
}
_SPECIES_ALIASES = {"mouse": Species.MOUSE, "mice": Species.MOUSE, "rat": Species.RAT}
_PREP_ALIASES = {
    "in vivo": Preparation.IN_VIVO,
    "in vivo tissue": Preparation.IN_VIVO,
    "tissue": Preparation.IN_VIVO,
    "synaptoneurosomes": Preparation.SYNAPTONEUROSOMES,
    "synaptoneurosome": Preparation.SYNAPTONEUROSOMES,
    "cultured neurons": Preparation.CULTURED_NEURONS,
    "culture": Preparation.CULTURED_NEURONS,
    "cultured": Preparation.CULTURED_NEURONS,
    "in vitro": Preparation.CULTURED_NEURONS,
}
_GENOTYPE_ALIASES = {
    "wild type": Genotype.WILD_TYPE,
    "wild-type": Genotype.WILD_TYPE,
    "wt": Genotype.WILD_TYPE,
    "wild_type": Genotype.WILD_TYPE,
    "fmr1 ko": Genotype.FMR1_KO,
    "fmr1 knock-out": Genotype.FMR1_KO,
    "fmr1 knockout": Genotype.FMR1_KO,
    "fmr1_ko": Genotype.FMR1_KO,
    "fmrp oe": Genotype.FMRP_OE,
    "fmrp over-expression": Genotype.FMRP_OE,
    "fmrp overexpression": Genotype.FMRP_OE,
    "fmrp_oe": Genotype.FMRP_OE,
}
# Unit -> (kind, factor to the canonical unit: mg/kg for doses, uM for concentrations).
_UNITS = {
    "mg/kg": ("dose", 1.0),
    "g/kg": ("dose", 1000.0),
    "um": ("conc", 1.0),
    "µm": ("conc", 1.0),
    "mm": ("conc", 1000.0),
    "nm": ("conc", 1e-3),
}
_IN_VIVO_PREPS = (Preparation.IN_VIVO, Preparation.SYNAPTONEUROSOMES)
# AP5 does not cross the blood-brain barrier and has no systemic exposure model.
_BATH_ONLY = (Drug.AP5,)


def _lookup(table: Mapping[str, object], word: str, what: str):
    key = word.strip().lower()
    if key in table:
        return table[key]
    raise ConditionError(f"unknown {what} {word.strip()!r}; known: {', '.join(sorted(set(table)))}")


def _check_amount(value: float, field: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConditionError(f"{field} must be a number, got {value!r}") from None
    if math.isnan(value) or math.isinf(value):
        raise ConditionError(f"{field} must be a finite number, got {value}")
    if value < 0:
        raise ConditionError(f"{field} must not be negative, got {value}")
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class Condition:
    """One experimental condition for one virtual neuron.

    Attributes:
        drug: the NMDAR-inhibiting drug, or None for vehicle.
        dose: mg/kg for i.p./s.c./i.v., uM for bath application (0 for vehicle).
        route: how the drug is given (None for vehicle).
        washout_h: for bath application, hours after application when the drug is washed out.
        cotreatments: co-applied treatments, present for the whole simulated period.
        bdnf_nM: exogenous BDNF in the bath, nM.
        species, preparation, genotype: the experimental system.
    """

    drug: Drug | None = None
    dose: float = 0.0
    route: Route | None = None
    washout_h: float | None = None
    cotreatments: frozenset[CoTreatment] = frozenset()
    bdnf_nM: float = 0.0
    species: Species = Species.MOUSE
    preparation: Preparation = Preparation.IN_VIVO
    genotype: Genotype = Genotype.WILD_TYPE

    def __post_init__(self) -> None:
        object.__setattr__(self, "cotreatments", frozenset(self.cotreatments))
        _check_amount(self.dose, "dose")
        _check_amount(self.bdnf_nM, "BDNF concentration (nM)")
        if self.drug is None:
            if self.dose != 0 or self.route is not None:
                raise ConditionError("vehicle has no dose or route; name a drug or drop the dose")
        else:
            if self.dose == 0:
                raise ConditionError(
                    f"{self.drug.value} dose is 0; give a positive dose or use 'vehicle'"
                )
            if self.route is None:
                raise ConditionError(
                    f"{self.drug.value}: route missing; add i.p., s.c., i.v. or bath"
                )
            if self.drug in _BATH_ONLY and self.route is not Route.BATH:
                raise ConditionError(
                    f"{self.drug.value} is modelled for bath application only (it does not "
                    "cross the blood-brain barrier); use a concentration such as '50 uM'"
                )
        if self.washout_h is not None:
            _check_amount(self.washout_h, "washout time (h)")
            if self.route is not Route.BATH:
                raise ConditionError("washout applies to bath application only; remove it")
        if self.route is Route.BATH and self.preparation in _IN_VIVO_PREPS:
            raise ConditionError(
                "bath application needs an in vitro preparation: add ', cultured neurons'"
            )
        if self.route in (Route.IP, Route.SC, Route.IV) and (
            self.preparation is Preparation.CULTURED_NEURONS
        ):
            raise ConditionError(
                f"{self.route.value} dosing needs an in vivo preparation, not cultured neurons; "
                "give a bath concentration (uM) instead"
            )
        in_vitro_only = {CoTreatment.TTX, CoTreatment.BICUCULLINE, CoTreatment.BACLOFEN}
        if self.preparation in _IN_VIVO_PREPS and (self.cotreatments & in_vitro_only):
            names = ", ".join(sorted(c.value for c in self.cotreatments & in_vitro_only))
            raise ConditionError(
                f"{names} are bath treatments (in vitro only, not modelled in vivo): for a "
                "culture experiment give the drug as a bath concentration and add ', cultured neurons'"
            )
        if self.bdnf_nM > 0 and self.preparation in _IN_VIVO_PREPS:
            raise ConditionError(
                "exogenous BDNF (nM) is a bath treatment: add ', cultured neurons'"
            )

    # -- derived views ----------------------------------------------------------------
    @property
    def is_vehicle(self) -> bool:
        """True when nothing is applied: no drug, no co-treatment, no exogenous BDNF."""
        return self.drug is None and not self.cotreatments and self.bdnf_nM == 0

    @property
    def dose_unit(self) -> str:
        return "uM" if self.route is Route.BATH else "mg/kg"

    def paired_vehicle(self) -> Condition:
        """The vehicle control of the same experiment: same animal/culture, nothing applied."""
        return Condition(species=self.species, preparation=self.preparation, genotype=self.genotype)

    @property
    def spec(self) -> str:
        """Canonical readable spec; ``parse_condition(c.spec) == c``."""
        parts = []
        if self.drug is None:
            parts.append("vehicle")
        else:
            item = f"{self.drug.value} {_num(self.dose)} {self.dose_unit} {self.route.value}"
            if self.washout_h is not None:
                item += f" washout {_num(self.washout_h)} h"
            parts.append(item)
        parts += [c.value for c in sorted(self.cotreatments, key=lambda c: c.value)]
        if self.bdnf_nM > 0:
            parts.append(f"BDNF {_num(self.bdnf_nM)} nM")
        text = " + ".join(parts)
        return f"{text}, {self.species.value}, {self.preparation.value}, {self.genotype.value}"

    def __str__(self) -> str:
        return self.spec


def _num(x: float) -> str:
    """Shortest text that parses back to exactly ``x``."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
_DRUG_ITEM = re.compile(
    rf"^(?P<name>.+?)\s+(?P<dose>{_NUMBER})\s*(?P<unit>[a-zA-Zµ][^\s]*)?"
    rf"(?:\s+(?P<route>i\.p\.|s\.c\.|i\.v\.|ip|sc|iv|bath))?"
    rf"(?:\s+washout(?:\s+at)?\s+(?P<wash>{_NUMBER})\s*h)?\s*$",
    re.IGNORECASE,
)


def _parse_item(item: str, fields: dict) -> None:
    text = item.strip()
    low = text.lower()
    if low in ("vehicle", "saline", "untreated", "control"):
        return
    if low in _COTREATMENT_ALIASES:
        fields["cotreatments"].add(_COTREATMENT_ALIASES[low])
        return
    match = _DRUG_ITEM.match(text)
    if match is None:
        if low in _DRUG_ALIASES:
            raise ConditionError(f"{text!r}: dose missing; write e.g. '{text} 10 mg/kg i.p.'")
        raise ConditionError(
            f"cannot read {text!r}; expected 'DRUG DOSE UNIT ROUTE' (e.g. 'ketamine 10 mg/kg "
            f"i.p.'), a co-treatment ({', '.join(c.value for c in CoTreatment)}) or 'vehicle'"
        )
    if match["unit"] is None:
        raise ConditionError(
            f"{text!r}: unit missing after the dose; use mg/kg or g/kg (in vivo) or nM, uM, mM (bath)"
        )
    name, unit = match["name"].strip().lower(), match["unit"].lower()
    if unit not in _UNITS:
        raise ConditionError(
            f"{text!r}: unknown unit {match['unit']!r}; use mg/kg or g/kg (in vivo) or "
            "nM, uM, mM (bath)"
        )
    kind, factor = _UNITS[unit]
    amount = _check_amount(match["dose"], f"dose in {text!r}")
    if name == "bdnf":
        if kind != "conc":
            raise ConditionError(f"{text!r}: exogenous BDNF needs a concentration such as '1 nM'")
        fields["bdnf_nM"] = amount * factor * 1e3
        return
    if name in _COTREATMENT_ALIASES:  # co-treatment with a stated amount: the model uses presence
        fields["cotreatments"].add(_COTREATMENT_ALIASES[name])
        return
    drug = _lookup(_DRUG_ALIASES, name, "drug")
    if fields.get("drug") is not None:
        raise ConditionError("one NMDAR-inhibiting drug per condition; split into two conditions")
    route = _ROUTE_ALIASES[match["route"].lower()] if match["route"] else None
    if kind == "conc":
        if route not in (None, Route.BATH):
            raise ConditionError(
                f"{text!r}: a concentration ({match['unit']}) means bath application, not "
                f"{route.value}; give mg/kg for in vivo dosing"
            )
        route = Route.BATH
    else:
        if route is Route.BATH:
            raise ConditionError(f"{text!r}: bath application needs a concentration (uM)")
        if route is None:
            raise ConditionError(f"{text!r}: route missing; add i.p., s.c. or i.v.")
    fields.update(drug=drug, dose=amount * factor, route=route)
    if match["wash"] is not None:
        fields["washout_h"] = _check_amount(match["wash"], f"washout time in {text!r}")


def parse_condition(spec: str) -> Condition:
    """Parse a readable condition spec (see module docstring)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConditionError("empty condition spec; e.g. 'ketamine 10 mg/kg i.p., mouse'")
    treatment, *qualifiers = [p.strip() for p in spec.split(",")]
    fields: dict = {"cotreatments": set(), "drug": None}
    for item in treatment.split("+"):
        _parse_item(item, fields)
    for q in qualifiers:
        key = q.lower()
        if key in _SPECIES_ALIASES:
            fields["species"] = _SPECIES_ALIASES[key]
        elif key in _PREP_ALIASES:
            fields["preparation"] = _PREP_ALIASES[key]
        elif key in _GENOTYPE_ALIASES:
            fields["genotype"] = _GENOTYPE_ALIASES[key]
        else:
            raise ConditionError(
                f"unknown qualifier {q!r} in {spec!r}; use a species (mouse, rat), a "
                "preparation (in vivo, synaptoneurosomes, cultured neurons) or a genotype "
                "(wild type, Fmr1 KO, FMRP OE)"
            )
    if "preparation" not in fields and fields.get("route") is Route.BATH:
        fields["preparation"] = Preparation.CULTURED_NEURONS
    if (
        "preparation" not in fields
        and fields.get("route") in (None, Route.BATH)
        and (
            fields["cotreatments"]
            & {CoTreatment.TTX, CoTreatment.BICUCULLINE, CoTreatment.BACLOFEN}
            or fields.get("bdnf_nM", 0) > 0
        )
    ):
        fields["preparation"] = Preparation.CULTURED_NEURONS
    try:
        return Condition(**fields)
    except ConditionError as err:
        raise ConditionError(f"{spec!r}: {err}") from None


_TABLE_KEYS = {
    "drug",
    "dose",
    "unit",
    "route",
    "washout_h",
    "cotreatments",
    "bdnf_nM",
    "species",
    "preparation",
    "genotype",
}


def condition_from_mapping(table: Mapping[str, object]) -> Condition:
    """Build a Condition from a TOML/JSON table, e.g.
    ``{drug = "ketamine", dose = 10, unit = "mg/kg", route = "i.p.", species = "mouse"}``.
    """
    unknown = set(table) - _TABLE_KEYS
    if unknown:
        raise ConditionError(
            f"unknown condition keys {sorted(unknown)}; known: {sorted(_TABLE_KEYS)}"
        )
    parts = []
    drug = table.get("drug")
    if drug not in (None, "", "vehicle"):
        if "dose" not in table or "unit" not in table:
            raise ConditionError(f"drug {drug!r} needs 'dose' and 'unit' keys")
        item = f"{drug} {table['dose']} {table['unit']}"
        if table.get("route"):
            item += f" {table['route']}"
        if table.get("washout_h") is not None:
            item += f" washout {table['washout_h']} h"
        parts.append(item)
    else:
        parts.append("vehicle")
    cot = table.get("cotreatments", [])
    if isinstance(cot, str):
        cot = [cot]
    parts += list(cot)
    if table.get("bdnf_nM"):
        parts.append(f"BDNF {table['bdnf_nM']} nM")
    qualifiers = [
        str(table[k]).replace("_", " ")
        for k in ("species", "preparation", "genotype")
        if table.get(k)
    ]
    return parse_condition(", ".join([" + ".join(str(p) for p in parts), *qualifiers]))


def as_condition(value: Condition | str | Mapping[str, object]) -> Condition:
    """Accept a Condition, a spec string or a table."""
    if isinstance(value, Condition):
        return value
    if isinstance(value, str):
        return parse_condition(value)
    if isinstance(value, Mapping):
        return condition_from_mapping(value)
    raise ConditionError(f"cannot make a condition from {type(value).__name__}")


def as_conditions(
    values: Iterable[Condition | str | Mapping[str, object]],
) -> tuple[Condition, ...]:
    return tuple(as_condition(v) for v in values)
