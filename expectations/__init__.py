"""Row rules as Great Expectations suites: schema conformance, visibility, bounds.

`validate_dataset(dataset, settings)` runs them and returns every failing item as a finding.
"""
from expectations.validate import SuiteError, ValidationReport, validate_dataset

__all__ = ["SuiteError", "ValidationReport", "validate_dataset"]
