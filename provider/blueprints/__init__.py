"""Blueprints and Tenants (SPEC §6): a customer's shape declared once, each customer one small document.

`expand` is the one place where Tenants become resources. `provider.manifests.collect` calls it after
every file is read and before the set's duplicates are refused, so every command (validate, plan, apply,
destroy, render) and Pulumi's `from_manifests` see the expanded resources exactly like hand-written ones.

Modules by job, top down: `expand` (Tenants × Blueprints → validated Manifests), `model` (documents →
compiled blueprints, the checks that need no Tenant), `parameters` (JSON Schema, defaults, declared
paths), `expressions` (`${...}` paths, pure), `errors` (limits and the error they raise), `documents`
(the two documents' shapes, for the readers and the JSON Schemas).

Nothing is imported here: the readers import `documents` from below, and a package that imported
`expand` on the way would import the readers back.
"""
