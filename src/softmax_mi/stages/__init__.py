"""Stage functions called by the pipeline rules (one module per paper part), via :mod:`softmax_mi.stage`."""
