"""Studies of the GABA loop: each computes a data object, draws it, and states its claims.

Studies import the library (``gaba_control``); the library never imports them.
``python -m analysis.report`` (or ``gaba-control report``) runs them all.
"""
