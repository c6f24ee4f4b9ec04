"""Condition specs: bad input raises a clear ConditionError; good input round-trips."""

from __future__ import annotations

import pytest

from models import (
    Condition,
    ConditionError,
    CoTreatment,
    Drug,
    Genotype,
    Preparation,
    Route,
    as_condition,
    condition_from_mapping,
    encode_conditions,
    parse_condition,
)
from models.conditions import Species  # models.Species is the pathway's state declaration

# (spec, regex the message must match: names the problem and, where there is one, the fix)
BAD_SPECS = [
    pytest.param(
        "cocaine 10 mg/kg i.p., mouse",
        r"unknown drug 'cocaine'; known: .*ketamine",
        id="unknown-drug",
    ),
    pytest.param(
        "ketamine -10 mg/kg i.p., mouse", r"must not be negative, got -10", id="negative-dose"
    ),
    pytest.param(
        "ketamine nan mg/kg i.p., mouse", r"must be a finite number, got nan", id="nan-dose"
    ),
    pytest.param("ketamine inf mg/kg i.p., mouse", r"must be a finite number", id="inf-dose"),
    pytest.param(
        "ketamine 0 mg/kg i.p., mouse",
        r"dose is 0; give a positive dose or use "
        r"'vehicle'",
        id="zero-dose",
    ),
    pytest.param(
        "ketamine, mouse",
        r"dose missing; write e\.g\. 'ketamine 10 mg/kg i\.p\.'",
        id="missing-dose",
    ),
    pytest.param(
        "ketamine 10 i.p., mouse", r"unknown unit 'i\.p\.'; use mg/kg .* uM", id="missing-unit"
    ),
    pytest.param("ketamine 10 kg i.p., mouse", r"unknown unit 'kg'; use mg/kg", id="bad-unit"),
    pytest.param(
        "ketamine 10 mg/kg bath, cultured neurons",
        r"bath application needs a concentration \(uM\)",
        id="mg/kg-with-bath",
    ),
    pytest.param(
        "ketamine 10 uM i.p., mouse",
        r"a concentration \(uM\) means bath application, not i\.p\.; give mg/kg",
        id="uM-with-i.p.",
    ),
    pytest.param(
        "ketamine 10 mg/kg, mouse",
        r"route missing; add i\.p\., s\.c\. or i\.v\.",
        id="missing-route",
    ),
    pytest.param(
        "ap5 10 mg/kg i.p., mouse", r"ap5 is modelled for bath application only", id="AP5-in-vivo"
    ),
    pytest.param(
        "ketamine 10 mg/kg i.p., hamster",
        r"unknown qualifier 'hamster'.*use a "
        r"species \(mouse, rat\)",
        id="unknown-qualifier",
    ),
    pytest.param(
        "vehicle + TTX, mouse, in vivo",
        r"TTX .*bath treatment.*add ', cultured "
        r"neurons'",
        id="TTX-in-vivo",
    ),
    pytest.param(
        "ketamine 10 mg/kg i.p. + baclofen, mouse, in vivo",
        r"baclofen .*bath "
        r"treatment",
        id="baclofen-in-vivo",
    ),
    pytest.param(
        "ketamine 10 uM bath, mouse, in vivo",
        r"bath application needs an in vitro "
        r"preparation",
        id="bath-in-vivo",
    ),
    pytest.param(
        "ketamine 10 mg/kg i.p., cultured neurons",
        r"i\.p\. dosing needs an in vivo "
        r"preparation",
        id="i.p.-in-culture",
    ),
    pytest.param(
        "ketamine 10 mg/kg i.p. washout 1 h, mouse",
        r"washout applies to bath "
        r"application only",
        id="washout-in-vivo",
    ),
    pytest.param(
        "ketamine 10 mg/kg i.p. + mk801 1 mg/kg i.p., mouse",
        r"one NMDAR-inhibiting "
        r"drug per condition",
        id="two-drugs",
    ),
    pytest.param(
        "BDNF 1 mg/kg, cultured neurons", r"BDNF needs a concentration", id="BDNF-in-mg/kg"
    ),
    pytest.param("", r"empty condition spec", id="empty"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_bad_spec_raises_clear_condition_error(spec, message):
    with pytest.raises(ConditionError, match=message):
        parse_condition(spec)


def test_missing_unit_without_route_is_reported_as_missing_unit():
    with pytest.raises(ConditionError) as err:
        parse_condition("ketamine 10, mouse")
    assert "'0'" not in str(err.value) and "unit" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(drug=Drug.KETAMINE, dose=float("nan"), route=Route.IP), "finite number"),
        (dict(drug=Drug.KETAMINE, dose=-1.0, route=Route.IP), "must not be negative"),
        (dict(drug=Drug.KETAMINE, dose=1.0), "route missing"),
        (dict(dose=1.0), "vehicle has no dose or route"),
        (
            dict(
                drug=Drug.KETAMINE,
                dose=1.0,
                route=Route.BATH,
                washout_h=-1.0,
                preparation=Preparation.CULTURED_NEURONS,
            ),
            "must not be negative",
        ),
        (dict(bdnf_nM=float("nan"), preparation=Preparation.CULTURED_NEURONS), "finite number"),
    ],
)
def test_condition_constructor_validates_like_the_parser(kwargs, message):
    with pytest.raises(ConditionError, match=message):
        Condition(**kwargs)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"drug": "ketamine", "dose": 10, "route": "i.p."}, "needs 'dose' and 'unit' keys"),
        (
            {"drug": "ketamine", "dose": 10, "unit": "mg/kg", "route": "i.p.", "colour": "red"},
            r"unknown condition keys \['colour'\]",
        ),
        ({"drug": "ketamine", "dose": -1, "unit": "mg/kg", "route": "i.p."}, "negative"),
        ({"drug": "ketamine", "dose": 10, "unit": "mg/kg", "route": "bath"}, "concentration"),
    ],
)
def test_bad_table_raises_clear_condition_error(table, message):
    with pytest.raises(ConditionError, match=message):
        condition_from_mapping(table)


ROUND_TRIP = [
    "vehicle, mouse",
    "ketamine 10 mg/kg i.p., mouse",
    "ketamine 10 mg/kg i.p. + rapamycin + cycloheximide, rat, synaptoneurosomes",
    "ro25-6981 10 mg/kg s.c. + GABABR antagonist, mouse, Fmr1 KO",
    "mk801 0.1 mg/kg i.v., rat",
    "memantine 10 uM bath + TTX + anti-BDNF + BDNF 1 nM, cultured neurons, FMRP OE",
    "ketamine 1 uM bath washout 0.5 h + baclofen + bicuculline, cultured neurons",
    "ethanol 30 mM bath washout 2 h, cultured neurons, Fmr1 KO",
    "ethanol 2.5 g/kg i.p., mouse",
    "ap5 50 uM bath, rat, cultured neurons",
    "vehicle + rapamycin, mouse",
]


@pytest.mark.parametrize("spec", ROUND_TRIP)
def test_spec_round_trips(spec):
    """parse_condition(c.spec) == c, the spec is a fixed point, and as_condition accepts the
    Condition, its spec and the spec again."""
    c = parse_condition(spec)
    assert parse_condition(c.spec) == c
    assert parse_condition(c.spec).spec == c.spec
    assert as_condition(c) is c and as_condition(c.spec) == c
    assert hash(parse_condition(c.spec)) == hash(c)


def test_spec_round_trips_for_any_float_dose():
    c = Condition(drug=Drug.KETAMINE, dose=1 / 3, route=Route.IP)
    assert parse_condition(c.spec) == c


def test_parsed_fields_and_aliases():
    c = parse_condition("Ket 10 mg/kg IP + CHX + CGP55845, Mice, Fmr1 knockout")
    assert c == Condition(
        drug=Drug.KETAMINE,
        dose=10.0,
        route=Route.IP,
        species=Species.MOUSE,
        genotype=Genotype.FMR1_KO,
        cotreatments=frozenset({CoTreatment.CYCLOHEXIMIDE, CoTreatment.GABAB_ANTAGONIST}),
    )
    assert parse_condition("ethanol 30 mM bath").dose == 30000.0  # mM -> uM
    assert parse_condition("ethanol 2.5 g/kg i.p.").dose == 2500.0  # g/kg -> mg/kg
    assert parse_condition("ethanol 30 mM bath").preparation is Preparation.CULTURED_NEURONS
    assert parse_condition("vehicle + TTX").preparation is Preparation.CULTURED_NEURONS
    assert parse_condition("BDNF 1 nM").bdnf_nM == 1.0


def test_condition_from_mapping_equals_parsed_spec():
    pairs = [
        (
            {"drug": "ketamine", "dose": 10, "unit": "mg/kg", "route": "i.p.", "species": "mouse"},
            "ketamine 10 mg/kg i.p., mouse",
        ),
        (
            {
                "drug": "ketamine",
                "dose": 1,
                "unit": "uM",
                "route": "bath",
                "washout_h": 0.5,
                "cotreatments": ["baclofen", "TTX"],
                "bdnf_nM": 1,
                "species": "rat",
                "preparation": "cultured neurons",
                "genotype": "FMRP OE",
            },
            "ketamine 1 uM bath washout 0.5 h + baclofen + TTX + BDNF 1 nM, rat, cultured neurons, "
            "FMRP OE",
        ),
        (
            {
                "drug": "ethanol",
                "dose": 30,
                "unit": "mM",
                "cotreatments": "rapamycin",
                "genotype": "Fmr1_KO",
            },
            "ethanol 30 mM bath + rapamycin, Fmr1 KO",
        ),
        ({"drug": "vehicle", "species": "rat"}, "vehicle, rat"),
        ({}, "vehicle"),
    ]
    for table, spec in pairs:
        assert condition_from_mapping(table) == parse_condition(spec), table
        assert as_condition(table) == parse_condition(spec)


def test_paired_vehicle_keeps_system_and_drops_treatments():
    c = parse_condition(
        "ketamine 1 uM bath washout 0.5 h + rapamycin + BDNF 1 nM, rat, cultured neurons, Fmr1 KO"
    )
    v = c.paired_vehicle()
    assert v.is_vehicle and not c.is_vehicle
    assert (v.species, v.preparation, v.genotype) == (c.species, c.preparation, c.genotype)
    assert v == parse_condition("vehicle, rat, cultured neurons, Fmr1 KO")


def test_encode_conditions_rejects_bad_specs_and_empty_batches():
    with pytest.raises(ConditionError, match="unknown drug"):
        encode_conditions(["ketamine 10 mg/kg i.p., mouse", "cocaine 1 mg/kg i.p., mouse"])
    with pytest.raises(ValueError, match="no conditions"):
        encode_conditions([])
