"""The ingress: aiohttp routes, authentication, server-sent event feeds, the error edge."""
