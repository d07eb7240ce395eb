"""A local look-alike of the vendor APIs (Fitbit Web API, Google Health API) and a synthetic
cohort to serve from it: the vendors are unreachable from our machines."""

from connectors.simulator.cohort import SyntheticCohort

__all__ = ["SyntheticCohort"]
