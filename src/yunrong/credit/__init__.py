"""Credit: features, models (WoE scorecard, LightGBM, ensemble), grades, pricing, explanations.

Pure and training code only: no web or database frameworks; only `yunrong.credit.cli` imports
Typer and Rich. See `yunrong.credit.world` for the synthetic SME world (synthetic data).
"""
