"""gaba_control: GABA adaptive multi-task loss weighting read as a control loop."""

__version__ = "0.1.0"
