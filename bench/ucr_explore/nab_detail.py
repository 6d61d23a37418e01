"""OOF VUS-PR per NAB series (mean over seeds) for the base and a few configurations."""
import pandas as pd
from analyse import base, run, tables

configs = {"base": base,
           "H only": pd.concat([base[base["candidate"].str.endswith("neighbours 0")], tables["H"]]),
           "base+H": pd.concat([base, tables["H"]]),
           "base+mix": pd.concat([base, tables["mix"]]),
           "base+maxTH": pd.concat([base, tables["maxTH"]]),
           "base+TH": pd.concat([base, tables["TH"]])}
out = {}
for label, t in configs.items():
    oof, _ = run(t)
    out[label] = oof[oof["group"] == "nab"].groupby("name")["vus_pr"].mean()
df = pd.DataFrame(out)
df.index = [n.split("/")[-1][:28] for n in df.index]
print(df.round(3).to_string()); print(df.mean().round(3).to_string())
