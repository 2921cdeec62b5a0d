"""The estimation layer: frozen-feature estimators, feature files, bring-your-own-representation evaluation (no torch)."""
