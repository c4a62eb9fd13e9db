"""The job API's contract: one pydantic model for every fixed request and response shape, and
one ``Endpoint`` for every route, from which ``/openapi.json`` is generated.

- ``base``: the route prefix, the model base classes, the error envelope.
- ``jobs``, ``webhooks``, ``models``, ``service``: the request and response models.
- ``pipelines``: the shapes that follow the pipeline definitions (inputs, submissions).
- ``spec``: ``Endpoint`` and its parts; ``endpoints_*``: every route's endpoint.
- ``components``: the OpenAPI components built from all of the above.

Route modules serialise through these models (``base.dump``) and register their handlers
against these endpoints (``registry.RouteRegistry``). Nothing here imports aiohttp handlers,
the registry or the document builder, so the contract is a leaf of the server package.
"""
