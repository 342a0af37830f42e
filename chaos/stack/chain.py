"""The chain node: an append-only, hash-linked block store on disk.

``python -m chaos.stack.chain --port P --data-dir D``

``POST /blocks`` appends a block when its height is head + 1 and its prev_hash is the head's
hash (409 otherwise; 400 when its hash does not match its content); the block is written to
``D/blocks.jsonl`` and fsynced before the 200. ``GET /head``, ``GET /blocks?from=h&limit=n``,
``POST /admin/rollback {"height": h, "hash"?: x}`` (keeps blocks 1..h, rewrites the file
atomically; with ``hash``, 409 and nothing dropped unless block h has that hash: the caller
rolls back to the chain it knew). A height above the head drops nothing.
A torn last line (crash mid-write) is dropped at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from chaos.builtins.web import json_response, read_json, serve
from chaos.files.atomic import replace_jsonl
from chaos.stack.blocks import GENESIS_HASH, block_hash
from chaos.stack.common import base_parser, parse_args

log = logging.getLogger("chaos.stack.chain")


class Chain:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "blocks.jsonl"
        self.blocks: list[dict[str, Any]] = self._load()
        self.lock = asyncio.Lock()

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        blocks = []
        good_bytes = 0
        with self.path.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                try:
                    blocks.append(json.loads(line))
                except ValueError:
                    break
                good_bytes += len(line)
        if good_bytes != self.path.stat().st_size:
            log.warning("dropping a torn tail of %s", self.path)
            with self.path.open("r+b") as fh:
                fh.truncate(good_bytes)
        return blocks

    def head(self) -> dict[str, Any]:
        if not self.blocks:
            return {"height": 0, "hash": GENESIS_HASH, "last_seq": 0, "block": None}
        last = self.blocks[-1]
        return {
            "height": last["height"],
            "hash": last["hash"],
            "last_seq": last["last_seq"],
            "block": last,
        }

    def _append(self, line: bytes) -> None:
        with self.path.open("ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def _rewrite(self, blocks: list[dict[str, Any]]) -> None:
        replace_jsonl(self.path, blocks, durable=True)

    async def append(self, block: dict[str, Any]) -> web.Response:
        async with self.lock:
            head = self.head()
            if block.get("height") != head["height"] + 1 or block.get("prev_hash") != head["hash"]:
                return json_response(
                    {
                        "error": "height or prev_hash does not follow the head",
                        "head": {k: head[k] for k in ("height", "hash", "last_seq")},
                    },
                    409,
                )
            if block.get("hash") != block_hash(block):
                return json_response({"error": "hash does not match the block content"}, 400)
            line = json.dumps(block, separators=(",", ":")).encode() + b"\n"
            await asyncio.to_thread(self._append, line)
            self.blocks.append(block)
            return json_response({"height": block["height"], "hash": block["hash"]})

    async def rollback(self, height: int, expected_hash: str | None = None) -> dict[str, Any]:
        """Keep blocks 1..``height``; ``{"height", "dropped"}``, or ``{"error", "head"}``
        when ``expected_hash`` is given and block ``height`` does not have it."""
        async with self.lock:
            if expected_hash is not None and height > 0:
                found = next((b["hash"] for b in self.blocks if b["height"] == height), None)
                if found != expected_hash:
                    return {
                        "error": f"block {height} has hash {found}, not {expected_hash}",
                        "height": self.head()["height"],
                    }
            kept = [b for b in self.blocks if b["height"] <= height]
            await asyncio.to_thread(self._rewrite, kept)
            dropped = len(self.blocks) - len(kept)
            self.blocks = kept
            log.warning("rolled back to height %d (%d blocks dropped)", height, dropped)
            return {"height": self.head()["height"], "dropped": dropped}


def build_app(chain: Chain) -> web.Application:
    started = time.time()

    async def health(_request: web.Request) -> web.Response:
        return json_response(
            {"status": "ok", "height": chain.head()["height"], "uptime": time.time() - started}
        )

    async def post_block(request: web.Request) -> web.Response:
        return await chain.append(await read_json(request))

    async def head(_request: web.Request) -> web.Response:
        return json_response(chain.head())

    async def blocks(request: web.Request) -> web.Response:
        try:
            start = int(request.query.get("from", "1"))
            limit = int(request.query.get("limit", "1000"))
        except ValueError as err:
            raise web.HTTPBadRequest(text="from and limit must be integers") from err
        selected = [b for b in chain.blocks[max(0, start - 1) :] if b["height"] >= start][:limit]
        return json_response({"blocks": selected, "height": chain.head()["height"]})

    async def rollback(request: web.Request) -> web.Response:
        body = await read_json(request)
        height = body.get("height")
        if not isinstance(height, int) or height < 0:
            raise web.HTTPBadRequest(text="height must be a non-negative integer")
        expected = body.get("hash")
        if expected is not None and not isinstance(expected, str):
            raise web.HTTPBadRequest(text="hash must be a string")
        answer = await chain.rollback(height, expected)
        return json_response(answer, 409 if "error" in answer else 200)

    app = web.Application(client_max_size=64 << 20)
    app.add_routes(
        [
            web.get("/health", health),
            web.post("/blocks", post_block),
            web.get("/head", head),
            web.get("/blocks", blocks),
            web.post("/admin/rollback", rollback),
        ]
    )
    return app


def main(argv: list[str] | None = None) -> None:
    args = parse_args(base_parser("chain"), argv)
    data_dir = Path(args.data_dir or Path(args.run_dir) / "chain")
    serve(build_app(Chain(data_dir)), args.host, args.port)


if __name__ == "__main__":
    main()
