"""The embedded Toxiproxy-compatible proxy server and its client.

- ``chaos.proxy.daemon.run`` / ``python -m chaos.proxy``: the server process.
- ``chaos.proxy.client.ToxiproxyClient``: a typed client for it or a real Toxiproxy.
- The tests' helpers (tests/integration/tcp_servers.py: small TCP servers and this server
  as a child process; tests/integration/real_toxiproxy.py: the real Toxiproxy 2.12.0) are
  not part of the package.

See ``docs/proxy.md``. Nothing is imported here so that the client does not pull in the
server (aiohttp, uvloop) and the server does not pull in ``requests``.
"""
