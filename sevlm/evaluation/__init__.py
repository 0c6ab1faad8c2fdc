"""Evaluation: the protocol's metrics (`metric`, also an `evaluate` module), the EA classifier, runs and reports."""
