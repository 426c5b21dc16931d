"""The plant: how training answers the weights — excitation, identification, models.

* :mod:`~gaba_control.plant.excitation`: PRBS and multisine inputs;
* :mod:`~gaba_control.plant.spectral`: non-parametric frequency response with
  coherence and calibrated confidence bands;
* :mod:`~gaba_control.plant.parametric`: ARX and output-error models as
  ``control.TransferFunction(..., dt=1)``, orders chosen on held-out records.
"""
