"""One adapter per provider, each the same shape.

An adapter turns a provider's request into an `InboundMessage`, checks that the provider sent it,
renders the acknowledgement, maps the provider's delivery statuses onto ours, and sends a reply.
The table `ADAPTERS` in `gateway.providers.registry` lists them; nothing registers itself.
"""
