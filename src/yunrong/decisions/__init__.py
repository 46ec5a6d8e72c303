"""Credit decisions on demands: the model registry (maker–checker promotion, rollback),
automated decisions with reasons, human overrides, and monitoring."""
