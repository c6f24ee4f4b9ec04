"""homeoplast.models: the pathway as differentiable diffrax ODEs, one virtual neuron each,
vectorised over populations of heterogeneous neurons.

Imports jax, equinox and diffrax only (never numpyro, pandas, matplotlib or ``infer``).
"""

from ._spec import (
    DefinitionError,
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
from .conditions import (
    Condition,
    ConditionError,
    CoTreatment,
    Drug,
    Genotype,
    Preparation,
    Route,
    as_condition,
    as_conditions,
    condition_from_mapping,
    parse_condition,
)
from .dynamics import CompiledPathway, compiled, default_theta, theta_from
from .exposure import EncodedConditions, condition_inputs, encode_conditions
from .pathway import PATHWAY
from .solve import NeuronSolution, SolverConfig, baseline_readouts, solve_neuron

__all__ = [
    "PATHWAY",
    "CompiledPathway",
    "CoTreatment",
    "Condition",
    "ConditionError",
    "DefinitionError",
    "Drug",
    "EncodedConditions",
    "Genotype",
    "Input",
    "LogNormal",
    "LogitNormal",
    "NeuronSolution",
    "Observable",
    "Parameter",
    "Pathway",
    "Preparation",
    "Route",
    "Rule",
    "SolverConfig",
    "Species",
    "Term",
    "as_condition",
    "as_conditions",
    "baseline_readouts",
    "compiled",
    "condition_from_mapping",
    "condition_inputs",
    "default_theta",
    "encode_conditions",
    "parse_condition",
    "solve_neuron",
    "theta_from",
]
