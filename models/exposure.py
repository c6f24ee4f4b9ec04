"""From conditions to the numeric inputs of the vector field.

A batch of conditions is encoded once as plain arrays (:class:`EncodedConditions`). The inputs
that depend on parameters (drug exposure per mg/kg, elimination, IC50) are gathered inside JAX
by :func:`condition_inputs`, so one vmapped solve covers conditions with different drugs and
parameters stay differentiable.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .conditions import (
    DRUG_ORDER,
    Condition,
    CoTreatment,
    Drug,
    Genotype,
    Route,
    Species,
    as_conditions,
)
from .dynamics import CompiledPathway, compiled

NO_WASHOUT_H = 1.0e6  # wash-out time used when the drug stays in the bath


class EncodedConditions(eqx.Module):
    """A batch of conditions as arrays (leading axis: condition)."""

    drug: Int[Array, " condition"]
    route: Int[Array, " condition"]
    is_rat: Float[Array, " condition"]
    has_drug: Float[Array, " condition"]
    dose: Float[Array, " condition"]  # mg/kg (in vivo) or uM (bath)
    t_off: Float[Array, " condition"]
    flags: Float[Array, "condition 7"]  # rapa chx antag baclofen ttx bic anti_bdnf
    bdnf_nM: Float[Array, " condition"]
    fmrp_gate: Float[Array, " condition"]
    fmr1_ko: Float[Array, " condition"]

    @property
    def size(self) -> int:
        return int(self.drug.shape[0])


_FLAG_ORDER = (
    CoTreatment.RAPAMYCIN,
    CoTreatment.CYCLOHEXIMIDE,
    CoTreatment.GABAB_ANTAGONIST,
    CoTreatment.BACLOFEN,
    CoTreatment.TTX,
    CoTreatment.BICUCULLINE,
    CoTreatment.ANTI_BDNF,
)


def encode_conditions(conditions: Sequence[Condition | str], dtype=np.float64) -> EncodedConditions:
    """Encode conditions (or specs) as arrays for a vmapped solve."""
    conds = as_conditions(conditions)
    if not conds:
        raise ValueError("no conditions given")
    route_order = tuple(Route)

    def col(fn, dt=dtype):
        return jnp.asarray(np.array([fn(c) for c in conds], dtype=dt))

    return EncodedConditions(
        drug=col(lambda c: DRUG_ORDER.index(c.drug) if c.drug else 0, np.int32),
        route=col(lambda c: route_order.index(c.route) if c.route else 0, np.int32),
        is_rat=col(lambda c: float(c.species is Species.RAT)),
        has_drug=col(lambda c: float(c.drug is not None)),
        dose=col(lambda c: c.dose),
        t_off=col(lambda c: c.washout_h if c.washout_h is not None else NO_WASHOUT_H),
        flags=jnp.asarray(
            np.array([[float(f in c.cotreatments) for f in _FLAG_ORDER] for c in conds], dtype)
        ),
        bdnf_nM=col(lambda c: c.bdnf_nM),
        fmrp_gate=col(lambda c: float(c.genotype is Genotype.WILD_TYPE)),
        fmr1_ko=col(lambda c: float(c.genotype is Genotype.FMR1_KO)),
    )


def select_condition(enc: EncodedConditions, index) -> EncodedConditions:
    """One condition of a batch (works with traced indices inside vmap)."""
    import jax

    return jax.tree_util.tree_map(lambda a: a[index], enc)


def _drug_vector(theta, cp: CompiledPathway, prefix: str, fill: float):
    """Per-drug parameter values in DRUG_ORDER; drugs without such a parameter get ``fill``."""
    values = []
    for drug in DRUG_ORDER:
        idx = cp.param_index.get(f"{prefix}_{drug.value}")
        values.append(theta[idx] if idx is not None else jnp.asarray(fill, theta.dtype))
    return jnp.stack(values)


def condition_inputs(
    theta: Float[Array, " param"], cond: EncodedConditions, cp: CompiledPathway | None = None
) -> Float[Array, " input"]:
    """Input vector ``u`` (``PATHWAY.input_names`` order) of ONE encoded condition."""
    cp = cp or compiled()
    p = cp.parameters(theta)
    ke = _drug_vector(theta, cp, "ke", 1.0)[cond.drug]
    kdose = _drug_vector(theta, cp, "kdose", 0.0)[cond.drug]
    ic50 = _drug_vector(theta, cp, "ic50", 1.0)[cond.drug]
    ke = ke * jnp.where(cond.is_rat > 0.5, p["rat_ke_scale"], 1.0)
    kdose = kdose * jnp.where(cond.is_rat > 0.5, p["rat_kdose_scale"], 1.0)
    one = jnp.ones((), theta.dtype)
    # Route order: i.p., s.c., i.v., bath
    ka = jnp.stack([p["ka_ip"], p["ka_sc"], p["ka_ip"], p["ka_ip"]])[cond.route]
    bioavail = jnp.stack([one, p["f_sc"], one, one])[cond.route]
    is_bath = (cond.route == list(Route).index(Route.BATH)).astype(theta.dtype) * cond.has_drug
    is_iv = (cond.route == list(Route).index(Route.IV)).astype(theta.dtype) * cond.has_drug
    in_vivo = cond.has_drug * (1 - is_bath)
    efficacy = jnp.stack(
        [
            p["f_glun2b"]
            if d is Drug.RO25_6981
            else p["eff_memantine"]
            if d is Drug.MEMANTINE
            else one
            for d in DRUG_ORDER
        ]
    )[cond.drug]
    values = {
        "dose_conc": in_vivo * cond.dose * kdose * bioavail,
        "ka": ka,
        "ke": ke,
        "is_iv": is_iv,
        "is_bath": is_bath,
        "bath_conc": is_bath * cond.dose,
        "t_off": cond.t_off,
        "ic50_d": ic50,
        "eff_d": efficacy * cond.has_drug,
        "rapa": cond.flags[0],
        "chx": cond.flags[1],
        "gabab_antag": cond.flags[2],
        "baclofen": cond.flags[3],
        "ttx": cond.flags[4],
        "bic": cond.flags[5],
        "anti_bdnf": cond.flags[6],
        "bdnf_ext": cond.bdnf_nM,
        "fmrp_gate": cond.fmrp_gate,
        "fmr1_ko": cond.fmr1_ko,
    }
    missing = set(cp.pathway.input_names) - set(values)
    if missing:  # a new Input in the pathway must be set here
        raise KeyError(f"inputs not set from conditions: {sorted(missing)}")
    return jnp.stack([jnp.asarray(values[n], theta.dtype) for n in cp.pathway.input_names])
