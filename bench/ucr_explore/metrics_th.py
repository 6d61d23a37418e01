"""Metric rows of the 2-D (w_T, w_H) grid: bench/.cache/ucr-variants/metrics-TH.csv."""
import pandas as pd
from common import VARIANT_CACHE, dev_series
from metrics_variants import th_rows

path = VARIANT_CACHE / "metrics-TH.csv"
if not path.is_file():
    pd.DataFrame(th_rows(dev_series()[0])).to_csv(path, index=False)
