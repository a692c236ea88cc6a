"""The statistics a results request can ask for, by the name ``?method=`` and ``--method`` use.

Apart from `liftlog.report`, which imports SciPy, so that the HTTP layer and the command line can
check a method's name without loading the statistics.
"""

METHODS = ("sequential", "fixed", "bayesian")
