"""The emulator's HTTP side: the ASGI app of a listener, uvicorn listeners, throttle, faults, stats, API Events."""
