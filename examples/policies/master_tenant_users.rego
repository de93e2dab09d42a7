# A master tenant (an organization labelled tier=master) never loses a user through a plan: neither a
# deletion nor a replacement (which deletes the mailbox first). Whoever really means it removes the
# label in a pull request of its own first.
#
# Written as conftest users write policies today: Rego v1, `deny contains msg if`.
package main

import rego.v1

deny contains msg if {
	some op in input.operations
	op.kind == "User"
	op.action in {"delete", "replace"}
	op.organization_labels.tier == "master"
	msg := sprintf(
		"User %s/%s would be %sd, and %s is a master tenant (tier=master): its users are never deleted or replaced",
		[op.organization, op.name, op.action, op.organization],
	)
}
