"""The checkers of the APIGen pipeline: each turns one row's evidence into a CheckResult."""
