"""One adapter per provider, each the same shape.

An adapter turns a provider's request into an `InboundMessage`, checks that the provider sent it,
renders the acknowledgement, maps the provider's delivery statuses onto ours, and sends a reply.
The table `SMS_SENDERS` in `gateway.providers.registry` says which adapter sends replies for
each provider, and `gateway.app` lists the routes each channel adds; nothing registers itself.
"""
