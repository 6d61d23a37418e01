"""Scores against labels: the metrics (`metrics`: AUC via scikit-learn, VUS, range-F1),
labelled series benchmarks (`series`) and panel benchmarks (`panels`)."""
