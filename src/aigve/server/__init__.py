"""The aigve evaluation service: FastAPI app, durable job store, worker processes, web page.

Start it with ``aigve serve``; ``aigve.server.app.create_app(settings)`` builds the ASGI app. The
server holds no model code: workers call ``aigve.api.evaluate``.
"""
