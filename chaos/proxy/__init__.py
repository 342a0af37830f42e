"""The embedded Toxiproxy-compatible proxy server and its client.

- ``chaos.proxy.daemon.run`` / ``python -m chaos.proxy``: the server process.
- ``chaos.proxy.client.ToxiproxyClient``: a typed client for it or a real Toxiproxy.
- ``chaos.proxy.real``: the real Toxiproxy 2.12.0 as a child process (side-by-side tests and
  benchmarks); ``chaos.proxy.testing``: our server as a child process, small TCP servers.

See ``docs/proxy.md``. Nothing is imported here so that the client does not pull in the
server (aiohttp, uvloop) and the server does not pull in ``requests``.
"""
