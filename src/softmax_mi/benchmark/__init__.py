"""A discrete-label MI benchmark: task families with known I(X;Y), estimators behind one interface
(:mod:`softmax_mi.benchmark.estimators`), intervals on every estimate and their coverage
(:mod:`softmax_mi.benchmark.intervals`, :mod:`softmax_mi.benchmark.coverage`), and bmi's estimators run in their own
environment (:mod:`softmax_mi.benchmark.bmi`)."""
