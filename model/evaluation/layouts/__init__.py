"""Readers for the standard re-identification dataset layouts, one module per layout.

Every reader takes the dataset root and returns a `DatasetSplits`; `LAYOUT_READERS`
(in `model.evaluation.layouts.catalogue`) maps the layout names the command lines
accept to them.
"""
