"""A discrete-label mutual-information benchmark: task families with known I(X;Y), estimators behind one interface,
intervals on every estimate and their coverage.

- :mod:`softmax_mi.benchmark.tasks`       ``Task`` (``sample(n, seed)``, ``truth()``), the families
  (``TASK_FAMILIES``: Gaussian mixtures, their bijections, Student-t, anchors, Gao et al., noisy-label MNIST)
- :mod:`softmax_mi.benchmark.estimators`  ``ESTIMATORS``: name → factory of an estimator with
  ``estimate(x, y, *, seed) -> MIEstimate`` (nats, with an interval and a ceiling flag)
- :mod:`softmax_mi.benchmark.intervals`   the interval of each estimator family and the ceilings

Example::

    from softmax_mi.benchmark import ESTIMATORS, Task
    task = Task("k10", "gaussian", {"classes": 10, "d": 20, "separation": 3.0})
    x, y = task.sample(5000, seed=0)
    task.truth()                                          # Truth(value=..., se=0.0, ...), nats
    ESTIMATORS["pc_softmax"]().estimate(x, y, seed=0)     # MIEstimate with its 95 % interval

Names are loaded lazily: importing the package stays torch-free.
"""

from softmax_mi import lazy_attribute

_LOCATIONS = {
    "ESTIMATORS": "estimators",
    "TASK_FAMILIES": "tasks",
    "Task": "tasks",
    "Truth": "tasks",
    "make_task": "tasks",
}

__all__ = sorted(_LOCATIONS)


def __getattr__(name: str):
    return lazy_attribute(__name__, _LOCATIONS, name)
