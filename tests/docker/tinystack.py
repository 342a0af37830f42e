"""A two-service stack for backend tests: small HTTP servers in the stack image, one link."""

from __future__ import annotations

from typing import TypedDict, Unpack

from chaos.stackfile.definition import HealthCheck, LinkSpec, ServiceSpec, StackDefinition

# GET anything -> 200 {"status": "ok", "service": NAME}; argv: PORT NAME
SERVER = (
    "import http.server, json, sys\n"
    "name = sys.argv[2]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = json.dumps({'status': 'ok', 'service': name}).encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *args): pass\n"
    "print('serving', name, flush=True)\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"
)


class ServerOptions(TypedDict, total=False):
    """The ServiceSpec fields a test sets on a tiny server."""

    depends_on: tuple[str, ...]
    site: str
    setup: tuple[tuple[str, ...], ...]


def server(name: str, **kwargs: Unpack[ServerOptions]) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        command=("{python}", "-c", SERVER, "{port}", name),
        health=HealthCheck(kind="http", path="/health", timeout_s=30.0),
        **kwargs,
    )


def tiny_stack() -> StackDefinition:
    marker = "{data_dir}/setup-ran"
    return StackDefinition(
        name="tiny",
        services=(
            server("alpha", setup=(("/bin/sh", "-c", f"echo setup > {marker}"),)),
            server("beta", depends_on=("alpha",), site="b"),
        ),
        links=(
            LinkSpec("clients-alpha", "clients", "alpha"),
            LinkSpec("beta-alpha", "beta", "alpha"),
        ),
    )
