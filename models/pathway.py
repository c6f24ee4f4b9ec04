"""The pathway, written once.

NMDAR block -> eEF2K/eEF2 -> BDNF/TrkB/Akt -> mTORC1 -> p70S6K/4E-BP1/S6 -> synthesis of synaptic
proteins -> spines, with the GABA-B receptor switch (14-3-3eta uncouples GABABR from GIRK and
turns its output into a dendritic Ca2+/mTORC1 drive) and slow homeostatic scaling. Time in hours.

Conventions (PATHWAY.md, "Time and units"):
- Sub-minute processes (receptor block, TrkB binding, GIRK gating) are algebraic rules.
- Protein levels are normalised to 1 in the untreated neuron; phosphorylated/active fractions
  relax to a baseline fraction that is a parameter. Every rate term is written as
  ``k * (production_rel - level)`` or ``k * (drive_rel * (1 - x) * x0/(1 - x0) - x)`` so the
  untreated steady state is analytic and exact (no pre-equilibration solve).
- Drug exposure is analytic (first-order absorption and elimination; bath exchange with a
  perfusion time constant), so it adds no stiff states.

Parameters without a literature id in ``source`` are assumptions: their priors are wide and
their docs say so. Literature ids refer to ``data/literature/values.csv``.
"""

from __future__ import annotations

import math

from ._spec import (
    Input,
    LogitNormal,
    LogNormal,
    Observable,
    Parameter,
    Pathway,
    Rule,
    Species,
    Term,
)

LN2 = math.log(2.0)


def _rate(name, default, doc, group, *, scale=1.0, bounds=None, source=None, het=False, unit="1/h"):
    lo, hi = bounds if bounds is not None else (default / 100.0, default * 100.0)
    return Parameter(
        name=name,
        unit=unit,
        default=default,
        prior=LogNormal(median=default, scale=scale),
        bounds=(lo, hi),
        doc=doc,
        group=group,
        source=source,
        heterogeneous=het,
    )


def _frac(name, default, doc, group, *, scale=1.0, source=None):
    return Parameter(
        name=name,
        unit="fraction",
        default=default,
        prior=LogitNormal(median=default, scale=scale),
        bounds=(1e-4, 1 - 1e-4),
        doc=doc,
        group=group,
        source=source,
    )


def _gain(name, default, doc, group, *, scale=0.7, bounds=None, source=None, het=False):
    return _rate(
        name,
        default,
        doc,
        group,
        scale=scale,
        bounds=bounds,
        source=source,
        het=het,
        unit="dimensionless",
    )


_EXPOSURE = "exposure"
_NMDAR = "NMDAR block"
_EEF2 = "eEF2K/eEF2"
_BDNF = "BDNF/TrkB/Akt"
_GABAB = "GABABR switch"
_MTOR = "mTORC1"
_SYN = "synthesis"
_SPINE = "synapses and homeostasis"

PARAMETERS: tuple[Parameter, ...] = (
    # ---------------------------------------------------------------- exposure (per drug)
    _rate(
        "ke_ketamine",
        LN2 / (23.0 / 60.0),
        "Ketamine elimination rate in the mouse (plasma half-life 23 min).",
        _EXPOSURE,
        scale=0.3,
        bounds=(0.05, 2.4),
        source="PK07",
    ),
    _rate(
        "ke_ro25_6981",
        1.0,
        "Ro 25-6981 elimination rate, mouse. Assumed (no stated "
        "half-life in the literature table).",
        _EXPOSURE,
        scale=1.0,
        bounds=(0.05, 2.4),
    ),
    _rate(
        "ke_mk801",
        0.5,
        "MK-801 elimination rate, mouse. Assumed.",
        _EXPOSURE,
        scale=1.0,
        bounds=(0.05, 2.4),
    ),
    _rate(
        "ke_memantine",
        0.3,
        "Memantine elimination rate, mouse. Assumed (PK05: memantine "
        "occupancy persists for 6 h, longer than ketamine).",
        _EXPOSURE,
        scale=1.0,
        bounds=(0.02, 2.4),
    ),
    _rate(
        "ke_ethanol",
        0.5,
        "Ethanol elimination rate (first-order approximation). Assumed.",
        _EXPOSURE,
        scale=1.0,
        bounds=(0.02, 2.4),
    ),
    _rate(
        "kdose_ketamine",
        0.38,
        "Unbound effect-site ketamine concentration per mg/kg "
        "(before absorption/elimination shape). Assumed: chosen so that 10 mg/kg i.p. gives "
        "a peak near 3 uM, about twice the in vivo IC50 (PK04), consistent with maximal "
        "occupancy at 15 min (PK05).",
        _EXPOSURE,
        scale=0.7,
        unit="uM/(mg/kg)",
    ),
    _rate(
        "kdose_ro25_6981",
        0.05,
        "Effect-site Ro 25-6981 per mg/kg. Assumed.",
        _EXPOSURE,
        scale=1.0,
        unit="uM/(mg/kg)",
    ),
    _rate(
        "kdose_mk801",
        2.09,
        "Effect-site MK-801 per mg/kg: total brain Cmax 46.3 ng/g after "
        "0.1 mg/kg i.p. (PK11) / 221.3 g/mol; unbound fraction not applied, so wide.",
        _EXPOSURE,
        scale=1.0,
        source="PK11",
        unit="uM/(mg/kg)",
    ),
    _rate(
        "kdose_memantine",
        0.5,
        "Effect-site memantine per mg/kg. Assumed.",
        _EXPOSURE,
        scale=1.0,
        unit="uM/(mg/kg)",
    ),
    _rate(
        "kdose_ethanol",
        35.0,
        "Effect-site ethanol per mg/kg (2.5 g/kg i.p. gives about "
        "90 mM at peak with this value). Assumed.",
        _EXPOSURE,
        scale=0.7,
        unit="uM/(mg/kg)",
    ),
    _rate(
        "ka_ip",
        20.0,
        "First-order absorption rate after i.p. injection. Assumed (peak within 15 min, PK05).",
        _EXPOSURE,
        scale=0.7,
        bounds=(2.5, 1000.0),
    ),
    _rate(
        "ka_sc",
        6.0,
        "First-order absorption rate after s.c. injection. Assumed.",
        _EXPOSURE,
        scale=0.7,
        bounds=(2.5, 1000.0),
    ),
    _frac("f_sc", 0.8, "Bioavailability of s.c. relative to i.p. dosing. Assumed.", _EXPOSURE),
    _gain(
        "rat_ke_scale",
        1.0,
        "Rat / mouse ratio of elimination rates (all drugs). Assumed.",
        _EXPOSURE,
        scale=0.5,
        bounds=(0.2, 2.4),
    ),
    _gain(
        "rat_kdose_scale",
        1.0,
        "Rat / mouse ratio of effect-site exposure per mg/kg. "
        "Assumed; PK08 gives the rat brain:plasma ratio 6.5 but no mouse counterpart.",
        _EXPOSURE,
        scale=0.7,
    ),
    _rate(
        "tau_bath",
        0.05,
        "Bath exchange time constant (application and wash-out). Assumed (3 min).",
        _EXPOSURE,
        scale=0.5,
        unit="h",
        bounds=(0.005, 0.5),
    ),
    # ---------------------------------------------------------------- NMDAR block
    _rate(
        "ic50_ketamine",
        1.42,
        "Unbound ketamine concentration for 50% NMDAR occupancy in "
        "vivo (PK04); 0.71 uM in vitro at -70 mV (PK01).",
        _NMDAR,
        scale=0.3,
        unit="uM",
        source="PK04",
    ),
    _rate(
        "ic50_ro25_6981",
        0.009,
        "Ro 25-6981 IC50 at GluN1/GluN2B receptors.",
        _NMDAR,
        scale=0.3,
        unit="uM",
        source="PK06",
    ),
    _rate(
        "ic50_mk801",
        0.05,
        "MK-801 IC50. Assumed (no value in the literature table).",
        _NMDAR,
        scale=1.0,
        unit="uM",
    ),
    _rate(
        "ic50_memantine",
        1.66,
        "Memantine Kd = koff/kon = 0.53 1/s / 0.32e6 1/(M s) (PK03).",
        _NMDAR,
        scale=0.3,
        unit="uM",
        source="PK03",
    ),
    _rate("ic50_ap5", 5.0, "AP5 IC50. Assumed.", _NMDAR, scale=1.0, unit="uM"),
    _rate(
        "ic50_ethanol",
        50000.0,
        "Ethanol IC50 at NMDARs (50 mM). Assumed.",
        _NMDAR,
        scale=0.7,
        unit="uM",
    ),
    _frac(
        "f_glun2b",
        0.5,
        "Fraction of the tonic NMDAR signal carried by GluN2B-containing "
        "receptors (the part Ro 25-6981 can block, PK06). Assumed.",
        _NMDAR,
        scale=1.0,
    ),
    _frac(
        "eff_memantine",
        0.2,
        "Efficacy of memantine at rest relative to ketamine (weaker "
        "trapping, Mg2+ competition; PK03 notes 20% partial untrapping). Assumed.",
        _NMDAR,
    ),
    _gain(
        "g_dis",
        0.5,
        "Disinhibition: rise of network activity per unit NMDAR block "
        "(glutamate burst at sub-anaesthetic doses, MT03).",
        _NMDAR,
        scale=0.7,
        bounds=(0.0, 10.0),
    ),
    _frac(
        "K_an",
        0.93,
        "NMDAR block at which network activity halves (anaesthesia; lets "
        "very high doses lose the effect, MT03).",
        _NMDAR,
        scale=1.0,
    ),
    _gain(
        "a_ttx",
        0.35,
        "Network activity under TTX relative to rest. Assumed; informed by EF01/EF02.",
        _NMDAR,
        scale=0.7,
        bounds=(0.01, 1.0),
    ),
    _gain(
        "a_bic",
        1.8,
        "Network activity under bicuculline relative to rest. Assumed; informed by EF01/EF03.",
        _NMDAR,
        scale=0.5,
        bounds=(1.0, 20.0),
    ),
    # ---------------------------------------------------------------- eEF2K / eEF2
    _rate(
        "k_pE",
        6.0,
        "p-eEF2 relaxation rate (eEF2K vs PP2A turnover). Order of magnitude "
        "from MD01 (PP2A kcat 0.47 1/s) and EF09 (p-eEF2 falls within 0.5-1 h).",
        _EEF2,
        scale=1.0,
        source=None,
    ),
    _frac("pE0", 0.5, "Baseline p-eEF2 fraction in a dendrite at rest. Assumed.", _EEF2),
    _gain(
        "h_K",
        1.0,
        "Sensitivity of eEF2K activity to the tonic NMDAR Ca2+ signal (power-law exponent).",
        _EEF2,
        scale=0.5,
        bounds=(0.1, 5.0),
        het=True,
    ),
    _gain(
        "g_fb",
        0.5,
        "Inhibition of eEF2K by p70S6K (MD01: S6K -> eEF2K): eEF2K activity "
        "scales as (1 + g_fb)/(1 + g_fb pS6K/pS6K0), bounded as p70S6K vanishes.",
        _EEF2,
        scale=0.7,
        bounds=(0.0, 2.0),
        source=None,
    ),
    # ---------------------------------------------------------------- BDNF / TrkB / Akt
    _rate(
        "k_B",
        1.5,
        "BDNF turnover rate (dendritic synthesis balances release/degradation). Assumed.",
        _BDNF,
        scale=1.0,
        het=True,
    ),
    _gain(
        "n_el",
        2.0,
        "Sensitivity of BDNF translation to elongation (1 - p-eEF2).",
        _BDNF,
        scale=0.5,
        bounds=(0.2, 8.0),
    ),
    _gain(
        "K_T",
        250.0,
        "TrkB half-saturation, in units of the resting ligand level: MD02's BDNF-TrkB Kd "
        "(kb/kf = 0.05 1/s / 1.0 1/(uM s) = 50 nM) over bdnf_ref_nM's default 0.2 nM. Wide "
        "prior: MD02 is a model's constant, and the resting level is assumed.",
        _BDNF,
        scale=1.0,
        source="MD02",
        het=True,
    ),
    _rate(
        "tau_trkb",
        0.00546,
        "Time constant of each of 4 equal stages between bath BDNF and TrkB signalling "
        "(binding, dimerisation, autophosphorylation, downstream PI3K), i.e. a gamma (Erlang-4) "
        "onset with mean 4 x tau_trkb. Default 19.7 s: the Erlang-4 onset is then 1/14.5 of its "
        "plateau at 30 s, as TrkB activation in FS-YUE99-0p5 (1 at 30 s of a 14.5 peak at "
        "5 min; NIH-3T3 cells, 7.3 nM BDNF); wide prior (other cells, another dose).",
        _BDNF,
        scale=1.0,
        unit="h",
    ),
    _rate(
        "bdnf_ref_nM",
        0.2,
        "Bath BDNF (nM) equivalent to the resting endogenous ligand level at TrkB. Assumed.",
        _BDNF,
        scale=1.0,
        unit="nM",
    ),
    _gain(
        "a_B",
        0.05,
        "Activity dependence of BDNF synthesis (exponent on network activity). Near 0 by "
        "default; larger values let anaesthetic doses, where network activity falls, lose the "
        "BDNF/mTORC1/spine effect (MT03). Assumed.",
        _BDNF,
        scale=1.5,
        bounds=(0.0, 3.0),
    ),
    _frac("f_ab", 0.9, "Fraction of BDNF neutralised by an anti-BDNF antibody. Assumed.", _BDNF),
    _frac("pAkt0", 0.1, "Baseline active Akt fraction. Assumed.", _BDNF, source=None),
    # ---------------------------------------------------------------- GABABR switch
    _rate(
        "k_Y",
        1.0,
        "14-3-3eta turnover rate (sets how fast NMDAR block raises it). Wide: "
        "neuronal protein half-lives span <1 to >20 d (TO02).",
        _GABAB,
        scale=1.5,
        source=None,
    ),
    _frac(
        "f_Ystab",
        0.7,
        "Maximal slowing of 14-3-3eta degradation by NMDAR block (GB19). "
        "Needs FMRP (genotype gate).",
        _GABAB,
        source=None,
    ),
    _frac("c0", 0.8, "GIRK-coupled fraction of GABABR at rest, wild type.", _GABAB),
    _frac(
        "c0_ko",
        0.4,
        "GIRK-coupled fraction of GABABR at rest in Fmr1 KO (baclofen response "
        "already non-negative in Fmr1 KO, GB03).",
        _GABAB,
        source=None,
    ),
    _gain(
        "h_Y",
        2.0,
        "Cooperativity of 14-3-3eta uncoupling of GABABR from GIRK.",
        _GABAB,
        scale=0.5,
        bounds=(0.25, 8.0),
    ),
    _rate(
        "k_G", 0.05, "GABABR protein turnover rate. Wide (TO02).", _GABAB, scale=1.5, source=None
    ),
    _gain(
        "g_FG",
        2.0,
        "FMRP-dependent increase of GABABR synthesis per unit NMDAR block (GB09-GB12).",
        _GABAB,
        scale=1.0,
        bounds=(0.0, 100.0),
        het=True,
    ),
    _frac(
        "tone0",
        0.2,
        "Ambient GABABR agonist occupancy relative to saturating baclofen. Assumed.",
        _GABAB,
    ),
    _gain(
        "w_ca",
        3.0,
        "Excitatory (Ca2+) output of an uncoupled GABABR relative to the GIRK "
        "output of a coupled one (GB01/GB02 sign switch).",
        _GABAB,
        scale=0.7,
    ),
    _frac("i0", 0.1, "GIRK shunt of excitatory drive at rest (fraction).", _GABAB),
    # ---------------------------------------------------------------- mTORC1
    _frac(
        "w_gb",
        0.2,
        "Fraction of resting mTORC1 drive that comes from GABABR (vs TrkB/Akt); GB20.",
        _MTOR,
        source=None,
    ),
    _frac("f_rapa", 0.9, "Inhibition of mTORC1 by rapamycin. Assumed.", _MTOR),
    _rate(
        "k_M",
        4.0,
        "mTORC1 activation relaxation rate (p-mTOR up within 1 h, MT01/MT02).",
        _MTOR,
        scale=1.0,
    ),
    _frac("M0", 0.2, "Baseline active mTORC1 (p-mTOR) fraction. Assumed.", _MTOR),
    _rate(
        "k_S6K",
        6.0,
        "p70S6K phosphorylation relaxation rate. MD02 gives mTORC1->S6K kcat 0.06 1/s.",
        _MTOR,
        scale=1.0,
        source=None,
    ),
    _frac("pS6K0", 0.2, "Baseline p-p70S6K fraction. Assumed.", _MTOR),
    _rate("k_4E", 6.0, "4E-BP1 phosphorylation relaxation rate. Assumed.", _MTOR, scale=1.0),
    _frac("p4E0", 0.2, "Baseline p-4E-BP1 fraction. Assumed.", _MTOR),
    _rate(
        "k_S6",
        2.93e-4 * 3600.0,
        "p-S6 dephosphorylation rate (2.93e-4 1/s, Fujita 2010 model).",
        _MTOR,
        scale=1.0,
        source="MD03",
    ),
    _frac("pS60", 0.2, "Baseline p-S6 fraction. Assumed.", _MTOR),
    # ---------------------------------------------------------------- synthesis
    _gain(
        "n_init",
        3.0,
        "Sensitivity of cap-dependent initiation to p-4E-BP1.",
        _SYN,
        scale=0.5,
        bounds=(0.2, 4.0),
    ),
    _frac("f_chx", 0.95, "Block of translation by cycloheximide/anisomycin. Assumed.", _SYN),
    _rate(
        "k_A",
        LN2 / (3.16 * 24.0),
        "GluA1 (local synaptic pool) turnover; synaptic protein "
        "half-lives 2-5 d (TO01), geometric middle 3.16 d.",
        _SYN,
        scale=0.5,
        source="TO01",
    ),
    _rate(
        "k_D",
        1.0 / (14.2 * 24.0),
        "PSD-95 turnover: mean lifetime 14.2 d in vivo (TO03).",
        _SYN,
        scale=0.5,
        source="TO03",
    ),
    _rate(
        "k_Sy",
        LN2 / (3.16 * 24.0),
        "Synapsin turnover; synaptic protein half-lives 2-5 d (TO01).",
        _SYN,
        scale=0.5,
        source="TO01",
    ),
    # ---------------------------------------------------------------- synapses, homeostasis
    _rate(
        "k_form",
        0.2,
        "Spine formation rate per unit excess PSD-95 (SP02: formation up at 12-24 h). Assumed.",
        _SPINE,
        scale=1.0,
        het=True,
    ),
    _gain(
        "S_max",
        2.0,
        "Largest spine density relative to rest that formation can reach. Assumed.",
        _SPINE,
        scale=0.5,
        bounds=(1.05, 20.0),
    ),
    _gain(
        "n_sp",
        6.0,
        "Sensitivity of spine formation to PSD-95 (power).",
        _SPINE,
        scale=0.5,
        bounds=(0.5, 20.0),
    ),
    _rate(
        "k_ret",
        1.0 / (14.0 * 24.0),
        "Return rate of spine density to its set point (spines persist about 2 weeks, SP01).",
        _SPINE,
        scale=0.7,
        source="SP01",
    ),
    _rate(
        "k_H",
        0.02,
        "Homeostatic scaling rate (unitary strength doubles in 1-2 d of activity block, HS02).",
        _SPINE,
        scale=1.0,
        source=None,
        het=True,
    ),
    _gain(
        "g_mini",
        10.0,
        "Acceleration of scaling per unit NMDAR-mini block (an order of magnitude faster, HS01).",
        _SPINE,
        scale=0.7,
        bounds=(0.0, 1000.0),
        source="HS01",
    ),
    _gain(
        "w_A",
        1.0,
        "Weight of GluA1 in mEPSC amplitude (power).",
        _SPINE,
        scale=0.5,
        bounds=(0.1, 5.0),
    ),
    _gain(
        "w_syn",
        0.5,
        "Weight of synapsin in mEPSC frequency (power).",
        _SPINE,
        scale=0.5,
        bounds=(0.05, 5.0),
    ),
)

SPECIES: tuple[Species, ...] = (
    Species(name="pE", unit="fraction", baseline="pE0", doc="p-eEF2 (Thr56) fraction", group=_EEF2),
    Species(name="B", unit="normalised", baseline=1.0, doc="dendritic BDNF", group=_BDNF),
    Species(name="Y", unit="normalised", baseline=1.0, doc="14-3-3eta protein", group=_GABAB),
    Species(name="G", unit="normalised", baseline=1.0, doc="GABABR protein (R1/R2)", group=_GABAB),
    Species(
        name="M", unit="fraction", baseline="M0", doc="active mTORC1 (p-mTOR Ser2448)", group=_MTOR
    ),
    Species(name="pS6K", unit="fraction", baseline="pS6K0", doc="p-p70S6K (Thr389)", group=_MTOR),
    Species(name="p4E", unit="fraction", baseline="p4E0", doc="p-4E-BP1", group=_MTOR),
    Species(name="pS6", unit="fraction", baseline="pS60", doc="p-S6", group=_MTOR),
    Species(name="GluA1", unit="normalised", baseline=1.0, doc="synaptic GluA1", group=_SYN),
    Species(name="PSD95", unit="normalised", baseline=1.0, doc="synaptic PSD-95", group=_SYN),
    Species(name="Syn", unit="normalised", baseline=1.0, doc="synapsin I", group=_SYN),
    Species(name="S", unit="normalised", baseline=1.0, doc="spine (synapse) density", group=_SPINE),
    Species(
        name="H",
        unit="normalised",
        baseline=1.0,
        doc="homeostatic scaling factor of synaptic strength",
        group=_SPINE,
    ),
)

INPUTS: tuple[Input, ...] = (
    Input(name="dose_conc", unit="uM", doc="dose x exposure per mg/kg (in vivo routes)"),
    Input(name="ka", unit="1/h", doc="absorption rate of the route"),
    Input(name="ke", unit="1/h", doc="elimination rate of the drug in the species"),
    Input(name="is_iv", unit="flag", doc="1 for i.v. bolus"),
    Input(name="is_bath", unit="flag", doc="1 for bath application"),
    Input(name="bath_conc", unit="uM", doc="bath concentration"),
    Input(name="t_off", unit="h", doc="bath wash-out time"),
    Input(name="ic50_d", unit="uM", doc="IC50 of the condition's drug"),
    Input(name="eff_d", unit="fraction", doc="blockable fraction x efficacy of the drug"),
    Input(name="rapa", unit="flag", doc="rapamycin"),
    Input(name="chx", unit="flag", doc="cycloheximide / anisomycin"),
    Input(name="gabab_antag", unit="flag", doc="GABABR antagonist"),
    Input(name="baclofen", unit="flag", doc="baclofen in the bath"),
    Input(name="ttx", unit="flag", doc="TTX"),
    Input(name="bic", unit="flag", doc="bicuculline"),
    Input(name="anti_bdnf", unit="flag", doc="anti-BDNF antibody"),
    Input(name="bdnf_ext", unit="nM", doc="exogenous BDNF in the bath"),
    Input(
        name="fmrp_gate",
        unit="flag",
        doc="1 when FMRP-dependent regulation works (wild "
        "type); 0 in Fmr1 KO and under FMRP over-expression",
    ),
    Input(name="fmr1_ko", unit="flag", doc="1 in Fmr1 knock-out"),
)

RULES: tuple[Rule, ...] = (
    # exposure
    Rule(
        name="conc_vivo",
        unit="uM",
        doc="effect-site concentration after i.p./s.c./i.v.",
        expr="piecewise(dose_conc * exp(-ke * t), is_iv > 0.5, "
        "dose_conc * ka / (ka - ke) * (exp(-ke * t) - exp(-ka * t)))",
    ),
    Rule(
        name="t_wash",
        unit="h",
        doc="time since wash-out (0 before)",
        expr="piecewise(t - t_off, t > t_off, 0)",
    ),
    Rule(
        name="conc_bath",
        unit="uM",
        doc="bath concentration seen by the neuron",
        expr="bath_conc * (exp(-t_wash / tau_bath) - exp(-t / tau_bath))",
    ),
    Rule(
        name="conc",
        unit="uM",
        doc="drug concentration at the NMDAR",
        expr="piecewise(conc_bath, is_bath > 0.5, conc_vivo)",
    ),
    # NMDAR block and activity
    Rule(
        name="block",
        unit="fraction",
        doc="fraction of the tonic NMDAR signal blocked",
        expr="eff_d * conc / (conc + ic50_d)",
    ),
    Rule(
        name="act_cond",
        unit="relative",
        doc="activity set by TTX / bicuculline",
        expr="pow(a_ttx, ttx) * pow(a_bic, bic)",
    ),
    Rule(
        name="net_act",
        unit="relative",
        doc="network activity: disinhibition at moderate "
        "block, anaesthetic fall at near-complete block",
        expr="act_cond * (1 + g_dis * block) / (1 + pow(block / K_an, 8))",
    ),
    # GABABR switch
    Rule(
        name="c_rest",
        unit="fraction",
        doc="GIRK-coupled GABABR fraction at rest (genotype)",
        expr="piecewise(c0_ko, fmr1_ko > 0.5, c0)",
    ),
    Rule(
        name="c",
        unit="fraction",
        doc="GIRK-coupled GABABR fraction (14-3-3eta uncouples)",
        expr="c_rest / (c_rest + (1 - c_rest) * pow(Y, h_Y))",
    ),
    Rule(
        name="tone",
        unit="fraction",
        doc="GABABR agonist occupancy",
        expr="(tone0 * (1 - baclofen) + baclofen) * (1 - gabab_antag)",
    ),
    Rule(
        name="gb_inh",
        unit="relative",
        doc="GIRK output relative to rest",
        expr="tone * G * c / (tone0 * c_rest)",
    ),
    Rule(
        name="gb_exc",
        unit="relative",
        doc="excitatory Ca2+/mTORC1 output of GABABR relative to rest",
        expr="tone * G * (1 - c) / (tone0 * (1 - c_rest))",
    ),
    # synaptic drive and the tonic NMDAR signal
    Rule(
        name="drive",
        unit="relative",
        doc="excitatory synaptic drive (strength x density, shunted by GIRK)",
        expr="H * S * pow(GluA1, w_A) * (1 + i0) / (1 + i0 * gb_inh)",
    ),
    Rule(
        name="sN",
        unit="relative",
        doc="tonic NMDAR Ca2+ signal (minis) relative to rest; "
        "synapse number and strength act on it only through homeostatic scaling (a "
        "simplification that keeps the slow synaptic loop from feeding back on eEF2K)",
        expr="net_act * (1 - block)",
    ),
    Rule(
        name="act_syn",
        unit="relative",
        doc="synaptic activity sensed by homeostatic "
        "scaling: tonic NMDAR signal x excitatory drive",
        expr="sN * drive",
    ),
    Rule(
        name="uK",
        unit="relative",
        doc="eEF2K activity relative to rest",
        expr="pow(sN, h_K) * (1 + g_fb) / (1 + g_fb * pS6K / pS6K0)",
    ),
    Rule(
        name="elong",
        unit="relative",
        doc="elongation permitted by low p-eEF2",
        expr="(1 - pE) / (1 - pE0)",
    ),
    Rule(
        name="bdnf_bath",
        unit="nM",
        doc="exogenous BDNF as seen by TrkB signalling: the bath step passed through 4 "
        "equal first-order stages of time constant tau_trkb (closed-form Erlang-4 onset, so "
        "no fast state: TrkB-Akt activation is sigmoidal in time, FS-YUE99, FS-DIJ05)",
        # 1 - exp(-x) (1 + x + x^2/2 + x^3/6), x = t / tau_trkb, in Horner form (one exp)
        expr="bdnf_ext * (1 - exp(-t / tau_trkb) * (1 + t / tau_trkb * (1 + t / tau_trkb / 2 "
        "* (1 + t / tau_trkb / 3))))",
    ),
    Rule(
        name="L",
        unit="relative",
        doc="TrkB ligand relative to rest (activity-dependent "
        "release + bath BDNF), reduced by anti-BDNF",
        expr="(1 - f_ab * anti_bdnf) * (B * net_act + bdnf_bath / bdnf_ref_nM)",
    ),
    Rule(
        name="trkb",
        unit="relative",
        doc="TrkB signal relative to rest (saturating)",
        expr="L * (1 + K_T) / (L + K_T)",
    ),
    Rule(
        name="pAkt",
        unit="fraction",
        doc="active Akt, quasi-steady with the TrkB signal "
        "(Akt activates within about 2 min of BDNF, FS-DIJ05: fast against every other "
        "process, so algebraic rather than a stiff state)",
        expr="trkb * pAkt0 / (1 - pAkt0) / (1 + trkb * pAkt0 / (1 - pAkt0))",
    ),
    Rule(
        name="mtor_drive",
        unit="relative",
        doc="mTORC1 activating input relative to rest",
        expr="((1 - w_gb) * pAkt / pAkt0 + w_gb * gb_exc) * (1 - f_rapa * rapa)",
    ),
    Rule(
        name="transl",
        unit="relative",
        doc="cap-dependent synthesis rate of synaptic "
        "proteins (initiation x elongation), blocked by cycloheximide",
        expr="pow(p4E / p4E0, n_init) * elong * (1 - f_chx * chx)",
    ),
    Rule(
        name="block_fmrp",
        unit="fraction",
        doc="NMDAR block acting through FMRP-dependent regulation",
        expr="fmrp_gate * block",
    ),
)


def _relax(k: str, drive: str, x: str, x0: str) -> str:
    """d x/dt for a fraction x pushed by a relative drive, with analytic baseline x0."""
    return f"{k} * ({drive} * (1 - {x}) * {x0} / (1 - {x0}) - {x})"


TERMS: tuple[Term, ...] = (
    Term(
        name="eEF2 phosphorylation/dephosphorylation",
        species="pE",
        expr=_relax("k_pE", "uK", "pE", "pE0"),
        doc="eEF2K (kept active by the tonic NMDAR Ca2+ signal, inhibited by p70S6K) against PP2A",
    ),
    Term(
        name="BDNF synthesis",
        species="B",
        expr="k_B * pow(elong, n_el) * pow(net_act, a_B) * (1 - f_chx * chx)",
        doc="dendritic BDNF translation de-suppressed by low p-eEF2, and (exponent a_B) "
        "activity-dependent",
    ),
    Term(name="BDNF loss", species="B", expr="-k_B * B", doc="release and degradation"),
    Term(name="14-3-3eta synthesis", species="Y", expr="k_Y", doc="constitutive"),
    Term(
        name="14-3-3eta degradation",
        species="Y",
        expr="-k_Y * (1 - f_Ystab * block_fmrp) * Y",
        doc="slowed by NMDAR block (stabilisation), FMRP-dependent",
    ),
    Term(
        name="GABABR synthesis",
        species="G",
        expr="k_G * transl * (1 + g_FG * block_fmrp)",
        doc="mTORC1-dependent translation, de-repressed by FMRP under NMDAR block",
    ),
    Term(name="GABABR degradation", species="G", expr="-k_G * G", doc="first order"),
    Term(
        name="mTORC1 activation",
        species="M",
        expr=_relax("k_M", "mtor_drive", "M", "M0"),
        doc="by Akt and by uncoupled GABABR; rapamycin inhibits",
    ),
    Term(
        name="p70S6K phosphorylation",
        species="pS6K",
        expr=_relax("k_S6K", "M / M0", "pS6K", "pS6K0"),
        doc="by mTORC1",
    ),
    Term(
        name="4E-BP1 phosphorylation",
        species="p4E",
        expr=_relax("k_4E", "M / M0", "p4E", "p4E0"),
        doc="by mTORC1",
    ),
    Term(
        name="S6 phosphorylation",
        species="pS6",
        expr=_relax("k_S6", "pS6K / pS6K0", "pS6", "pS60"),
        doc="by p70S6K",
    ),
    Term(
        name="GluA1 synthesis/turnover",
        species="GluA1",
        expr="k_A * (transl - GluA1)",
        doc="local synthesis, degradation over days",
    ),
    Term(
        name="PSD-95 synthesis/turnover",
        species="PSD95",
        expr="k_D * (transl - PSD95)",
        doc="local synthesis, degradation over weeks",
    ),
    Term(
        name="synapsin synthesis/turnover",
        species="Syn",
        expr="k_Sy * (transl - Syn)",
        doc="synthesis, degradation over days",
    ),
    Term(
        name="spine formation",
        species="S",
        expr="k_form * (pow(PSD95, n_sp) - 1) * S * (S_max - S) / (S_max - 1)",
        doc="driven by excess scaffold (PSD-95), saturating at S_max",
    ),
    Term(
        name="spine return to set point",
        species="S",
        expr="k_ret * (1 - S)",
        doc="slow pruning back to the resting density",
    ),
    Term(
        name="homeostatic scaling",
        species="H",
        expr="k_H * (1 + g_mini * block) * H * (1 - act_syn)",
        doc="strength moves to restore the tonic NMDAR/activity signal to its set point; "
        "faster when NMDAR minis are blocked (HS01)",
    ),
)

OBSERVABLES: tuple[Observable, ...] = (
    Observable(name="p_eEF2", expr="pE", unit="fraction", doc="p-eEF2 (Thr56)"),
    Observable(name="BDNF", expr="B", unit="normalised", doc="BDNF protein"),
    Observable(name="p_Akt", expr="pAkt", unit="fraction", doc="active Akt"),
    Observable(name="p_mTOR", expr="M", unit="fraction", doc="p-mTOR (Ser2448)"),
    Observable(name="p_p70S6K", expr="pS6K", unit="fraction", doc="p-p70S6K (Thr389)"),
    Observable(name="p_4EBP1", expr="p4E", unit="fraction", doc="p-4E-BP1"),
    Observable(name="p_S6", expr="pS6", unit="fraction", doc="p-S6"),
    Observable(name="GluA1", expr="GluA1", unit="normalised", doc="synaptic GluA1"),
    Observable(name="PSD95", expr="PSD95", unit="normalised", doc="synaptic PSD-95"),
    Observable(name="synapsin", expr="Syn", unit="normalised", doc="synapsin I"),
    Observable(
        name="GABABR1",
        expr="G",
        unit="normalised",
        doc="GABABR1 protein (R1 and R2 share one state)",
    ),
    Observable(
        name="GABABR2",
        expr="G",
        unit="normalised",
        doc="GABABR2 protein (R1 and R2 share one state)",
    ),
    Observable(name="eta_14_3_3", expr="Y", unit="normalised", doc="14-3-3eta protein"),
    Observable(
        name="baclofen_ca",
        expr="G * (w_ca * (1 - c) - c) * (1 - gabab_antag)",
        unit="relative (signed)",
        ratio=False,
        doc="baclofen-evoked dendritic Ca2+ signal: excitatory minus GIRK output, "
        "negative at rest, positive after NMDAR block; arbitrary scale",
    ),
    Observable(name="spine_density", expr="S", unit="normalised", doc="spine density"),
    Observable(
        name="mEPSC_amplitude", expr="H * pow(GluA1, w_A)", unit="normalised", doc="mEPSC amplitude"
    ),
    Observable(
        name="mEPSC_frequency", expr="S * pow(Syn, w_syn)", unit="normalised", doc="mEPSC frequency"
    ),
    Observable(
        name="excitatory_drive", expr="drive", unit="normalised", doc="excitatory synaptic drive"
    ),
    Observable(
        name="drug_conc", expr="conc", unit="uM", ratio=False, doc="drug concentration at the NMDAR"
    ),
    Observable(
        name="nmdar_block",
        expr="block",
        unit="fraction",
        ratio=False,
        doc="fraction of the tonic NMDAR signal blocked",
    ),
    Observable(name="eEF2K", expr="uK", unit="relative", doc="eEF2K activity"),
    Observable(name="trkb_signal", expr="trkb", unit="relative", doc="TrkB signal"),
    Observable(name="girk_coupled", expr="c", unit="fraction", doc="GIRK-coupled GABABR"),
)

# Prior rows of the literature table that no parameter takes its default from, and why; the
# generated parameter table lists them so every prior row is accounted for.
PRIOR_ROWS_NOT_USED: dict[str, str] = {
    "PK01": "in vitro IC50 (0.71 uM, -70 mV); the model's effect site is in vivo, so "
    "ic50_ketamine uses the in vivo unbound value PK04 (PK01 lies 2.3 prior SDs below its median)",
    "MD01": "Jain & Bhalla 2009 eEF2K/PP2A/S6K constants: order-of-magnitude guidance for k_pE "
    "and g_fb (cited in their docs); the defaults are not computed from them",
    "PK02": "ketamine kon/koff: block equilibrates in seconds, so it is quasi-steady (no rate "
    "parameter)",
    "PK08": "rat brain:plasma ratio 6.5: the model lumps dose-to-effect-site exposure into "
    "kdose_*; no mouse counterpart to set rat_kdose_scale",
    "PK09": "human plasma Cmax: the model covers mouse and rat only",
    "PK10": "(2R,6R)-HNK IC50: the metabolite is not a modelled drug",
    "GB22": "GIRK desensitisation (seconds-minutes): GIRK gating is quasi-steady in the model",
    "TO04": "PSD-95 exchange between spines (minutes): the model has one synaptic PSD-95 pool",
}

PATHWAY = Pathway(
    species=SPECIES,
    parameters=PARAMETERS,
    inputs=INPUTS,
    rules=RULES,
    terms=TERMS,
    observables=OBSERVABLES,
    input_parameters=tuple(
        p.name
        for p in PARAMETERS
        if p.name.split("_")[0] in ("ke", "kdose", "ic50", "ka")
        or p.name in ("f_sc", "rat_ke_scale", "rat_kdose_scale", "f_glun2b", "eff_memantine")
    ),
)
