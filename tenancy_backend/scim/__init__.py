"""SCIM 2.0 for each organization of the tenancy backend (SPEC §8), under /scim/v2/{org}.

    routes        the FastAPI application the API mounts (thin: HTTP in, SCIM documents out)
    provisioning  the operations on one organization: scim2-models parses, the service layer decides
    queries       filter / sort / paging / attributes of list requests (scim2-models)
    mapping       tenancy documents ⇄ SCIM resources (pure)
    models        the served resources and the discovery documents
    errors        SCIM Error documents, with their scimType
"""

from tenancy_backend.scim.routes import PREFIX, build_scim_app

__all__ = ["PREFIX", "build_scim_app"]
