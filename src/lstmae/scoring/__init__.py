"""From a fitted network to scores, thresholds and intervals.

`inference` runs the network over windows or samples; `state.ScoringState` is
what scoring needs after training; `latent` and `neighbours` are the nearest-row
searches of the latent and nearest-window parts; `combination` turns per-window
values into per-timestep parts and weighs them; `thresholds` and `intervals`
turn scores into decisions. Scores are always "higher = more anomalous".
"""
