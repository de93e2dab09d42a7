# At most `max_changes` changes in one apply: a bigger plan is split (`--target`, `--exclude`) or its
# budget raised here in a reviewed pull request. Past half the budget, a warning.
#
# A `deny_` rule with a suffix and a `warn` rule, as conftest reads them; the budget is a constant of
# the policy (conftest users keep such numbers in the policy, or in a data file passed with --data).
package main

import rego.v1

max_changes := 100

deny_change_budget contains msg if {
	count(input.operations) > max_changes
	msg := sprintf(
		"the plan makes %d changes, more than %d in one apply: split it (--target) or raise max_changes",
		[count(input.operations), max_changes],
	)
}

warn contains msg if {
	count(input.operations) > max_changes / 2
	count(input.operations) <= max_changes
	msg := sprintf("the plan makes %d changes, over half the budget of %d", [count(input.operations), max_changes])
}
