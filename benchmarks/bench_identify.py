"""Speed of the plant identification on a 10⁴-step trace, on one core.

Run: ``python -m benchmarks.bench_identify`` (``--quick`` for a smoke run).

The trace is synthetic (a PRBS through a known second-order plant with
coloured noise and a drift, like an excitation run), so the timing does not
depend on committed data. Timed, each the best of three: the Welch H1
estimate with bands; the output-error order selection over the study's
candidate grid (estimation on the first two thirds, held-out scoring on the
last); and the whole per-group analysis of the identification study
(:func:`analysis.identify.estimate_plant`: spectra for both outputs, order
selection, the final fit, per-record gains and three windows) with the trace
cut into three records. The issue's target is under 5 s for the analysis of a
10⁴-step trace.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # one core, set before numpy loads its BLAS

import argparse  # noqa: E402
import platform  # noqa: E402

import numpy as np  # noqa: E402
from scipy import signal  # noqa: E402

#: the synthetic plant: poles 0.8 and 0.5, one step of delay, DC gain 0.12/0.1 = 1.2
PLANT = (np.array([0.0, 0.2, -0.08]), np.real(np.poly([0.8, 0.5])))


def synthetic_trace(n: int, seed: int = 0):
    """``(λ, R)`` of an excitation run through :data:`PLANT` (elasticity 1.2)."""
    from gaba_control.plant.excitation import prbs

    rng = np.random.default_rng(seed)
    lam0 = 0.05
    lam = lam0 * (1 + 0.4 * prbs(n, clock=40, seed=seed))
    u = np.log(lam / lam0)
    y = (np.log(600.0) + 0.5 * np.linspace(0, 1, n)
         + signal.lfilter(*PLANT, u)
         + signal.lfilter([1.0], [1.0, -0.9], 0.05 * rng.standard_normal(n)))
    return lam, np.exp(y)


def main(argv=None) -> None:
    from analysis.identify import POLES, SKIP, Record, estimate_plant
    from benchmarks.bench_controller import best_of
    from gaba_control.plant.parametric import select_order
    from gaba_control.plant.spectral import frequency_response_estimate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2,000-step trace")
    args = parser.parse_args(argv)
    n = 2000 if args.quick else 10**4
    lam, ratio = synthetic_trace(n)
    u, y = np.log(lam / 0.05), np.log(ratio)
    cut = 2 * n // 3

    spectral_s = best_of(lambda: frequency_response_estimate(u, y, nperseg=1024 if n > 4000
                                                             else 256), 3)
    select_s = best_of(lambda: select_order(u[:cut], y[:cut], u[cut:], y[cut:], poles=POLES), 3)
    third = n // 3
    records = [Record("main", "SYN", s, "prbs", 0.05, 0.4, 0.05, lam[s * third:(s + 1) * third],
                      ratio[s * third:(s + 1) * third], np.zeros(third, int), {})
               for s in range(3)]
    study_s = best_of(lambda: estimate_plant(records), 3)
    plant = estimate_plant(records)

    print(f"# identification benchmark ({platform.processor() or platform.machine()}, "
          f"one thread, numpy {np.__version__}, load average {os.getloadavg()[0]:.1f})\n")
    print(f"A {n}-step synthetic excitation trace (the first {SKIP} steps of each record "
          "skipped by the study). Best of three.\n")
    print("| step | time |")
    print("| --- | --- |")
    print(f"| Welch H1 with coherence and bands, {n} steps | {spectral_s * 1e3:.0f} ms |")
    print(f"| OE order selection, {len(POLES) * 2} candidates, held-out third | "
          f"{select_s:.2f} s |")
    print(f"| whole per-group analysis (`estimate_plant`, 3 records of {third}) | "
          f"{study_s:.2f} s (target < 5 s) |")
    true_gain = PLANT[0].sum() / PLANT[1].sum()
    poles = np.round(plant.model.poles, 3).tolist()
    print(f"\nchosen model: OE{plant.model.orders}, DC gain {plant.model.dc_gain:.3f} "
          f"(true {true_gain:.3g}), poles {poles}")


if __name__ == "__main__":
    main()
