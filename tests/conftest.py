import os

os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import settings

# "ci" keeps property tests quick on 2 cores; "thorough" is for local deep runs.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("thorough", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module of tiny models: more only add contention
    (and timing noise) there; the previous setting is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def cmapss_dir():
    """The C-MAPSS directory, or a skip that names every path tried."""
    from gaba_control.cmapss.data import default_data_dir

    try:
        return default_data_dir()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
