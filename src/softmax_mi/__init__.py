"""softmax-mi: a classifier trained with softmax cross-entropy, read as a mutual-information estimator.

Library entry points (usable without the pipeline):

- :mod:`softmax_mi.losses`      softmax / PC-softmax losses in stable log-sum-exp form
- :mod:`softmax_mi.estimators`  MI estimators with one call shape (``fit(train).estimate(test)`` in nats)
- :mod:`softmax_mi.data`        synthetic tasks with known mutual information
"""

__version__ = "0.1.0"
