import os

os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import settings

# "ci" keeps property tests quick on 2 cores; "thorough" is for local deep runs.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("thorough", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
