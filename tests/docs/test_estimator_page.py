"""The estimator guide's signature line (docs/guide/estimator.md) is the estimator's: every parameter, its default."""

from __future__ import annotations

import ast
import inspect
import re

from paths import ROOT

from lstmae import LSTMAutoencoder


def test_the_guide_shows_the_estimators_signature_with_its_defaults():
    text = (ROOT / "docs" / "guide" / "estimator.md").read_text(encoding="utf-8")
    shown = re.search(r"`LSTMAutoencoder\((.*?)\)`", text, re.S).group(1)
    call = ast.parse(f"f({' '.join(shown.split())})", mode="eval").body
    documented = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    actual = {name: p.default for name, p in inspect.signature(LSTMAutoencoder).parameters.items()}
    assert documented == actual
