# Moving a user up to the pro subscription costs money: the user must carry the label approved=true,
# added in the same pull request by whoever approves the cost. New users are not moves.
#
# Messages as objects with `msg` (conftest keeps the other keys as metadata).
package main

import rego.v1

violation contains {"msg": msg, "resource": resource} if {
	some op in input.operations
	op.kind == "User"
	some change in op.changes
	change.path == "spec.subscription"
	change.before != null
	change.after == "pro"
	object.get(op.labels, "approved", "") != "true"
	resource := sprintf("User/%s/%s", [op.organization, op.name])
	msg := sprintf("%s moves from %s to pro without the label approved=true", [resource, change.before])
}
