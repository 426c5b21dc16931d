"""Studies of the GABA loop: each computes a data object, draws it, and states its claims.

Studies import the library (``gaba_control``); the library never imports them.
``gaba-control report`` runs them all. In a checkout this folder is the package
``analysis``; installed, it is ``gaba_control.analysis`` (one import name), and
its ``*_response`` functions and their data objects (each with ``.plot()``) are
available from here for your own settings:

>>> from gaba_control.analysis import bode_response
>>> response = bode_response(betas=(0.95, 0.99))
>>> type(response).__name__, type(response.plot()).__name__
('BodeResponse', 'Figure')

Names are imported on first use, so that ``import gaba_control.analysis`` stays
cheap. ``step_response`` is the name of its study module, so the function is
``gaba_control.analysis.step_response.step_response``.
"""

from __future__ import annotations

import importlib

#: public name → the study module defining it
_EXPORTS = {
    "BodeResponse": "bode",
    "bode_response": "bode",
    "BoundsResponse": "bounds",
    "RecoveryResponse": "bounds",
    "WindupResponse": "bounds",
    "bounds_response": "bounds",
    "recovery_response": "bounds",
    "saturation_curve_response": "bounds",
    "windup_response": "bounds",
    "ConstantImbalanceResponse": "closed_loop",
    "DecimatedSensorResponse": "closed_loop",
    "IdentifiedPlantResponse": "closed_loop",
    "PlantResponse": "closed_loop",
    "StartupResponse": "closed_loop",
    "SweepResponse": "closed_loop",
    "SwitchingResponse": "closed_loop",
    "constant_imbalance_response": "closed_loop",
    "decimated_sensor_response": "closed_loop",
    "identified_plant_response": "closed_loop",
    "plant_response": "closed_loop",
    "startup_response": "closed_loop",
    "sweep_response": "closed_loop",
    "switching_response": "closed_loop",
    "ComparisonResponse": "compare",
    "comparison_response": "compare",
    "FieldModelsResponse": "field",
    "FieldSimulationResponse": "field",
    "GradNormStabilityResponse": "field",
    "field_models_response": "field",
    "field_simulation_response": "field",
    "gradnorm_stability_response": "field",
    "IdentificationResponse": "identify",
    "identification_response": "identify",
    "FiniteWindowResponse": "noise",
    "NoiseResponse": "noise",
    "PsdResponse": "noise",
    "StationaryNoiseResponse": "noise",
    "finite_window_response": "noise",
    "noise_response": "noise",
    "psd_response": "noise",
    "stationary_noise_response": "noise",
    "RealLoopResponse": "real_loop",
    "real_loop_response": "real_loop",
    "SeedAuditResponse": "seed_audit",
    "audit_response": "seed_audit",
    "StepResponse": "step_response",
    "SettingsSweepResponse": "sweep",
    "settings_sweep_response": "sweep",
    "VariantsResponse": "variants",
    "variants_response": "variants",
    "VarianceGapResponse": "variance_gap",
    "variance_gap_response": "variance_gap",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module("." + _EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
