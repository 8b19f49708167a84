"""Priors over the PROVABGS parameters and the bijection to the flow space."""

from .sedflow import (
    BETA_SIMPLEX_ATOL,
    SEDFLOW_BOUNDS,
    FlowToPhysical,
    SEDflowPrior,
    flow_to_physical,
    log_abs_det_jacobian,
    physical_to_flow,
    sedflow_prior,
)

__all__ = [
    "BETA_SIMPLEX_ATOL",
    "SEDFLOW_BOUNDS",
    "FlowToPhysical",
    "SEDflowPrior",
    "flow_to_physical",
    "log_abs_det_jacobian",
    "physical_to_flow",
    "sedflow_prior",
]
