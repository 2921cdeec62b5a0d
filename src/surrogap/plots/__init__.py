"""Figures of the report that are not part of surrogap.report.figures."""
