"""The IO shell: the aiohttp app, WebSocket sessions, the aiortc adapter, timers and sockets."""
