"""Command line: `python -m examples.retail rest|mcp ...` (see examples/retail/README.md)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from examples.retail.auth import AUTH_MODES, AuthConfig
from examples.retail.store import RetailStore, default_db_path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.retail", description="The tau2 retail sample platform."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db", type=Path, default=None, help="db.json to load (default: $RETAIL_DB_PATH or tau2's)"
    )
    common.add_argument(
        "--state-file",
        type=Path,
        default=os.environ.get("RETAIL_STATE_PATH") or None,
        help="save the state here after every write, resume from it on start "
        "(default: $RETAIL_STATE_PATH; none: in memory only)",
    )
    common.add_argument("--host", default="127.0.0.1")

    rest = commands.add_parser("rest", parents=[common], help="serve the REST API")
    rest.add_argument("--port", type=int, default=8760)
    rest.add_argument("--auth", choices=AUTH_MODES, default=os.environ.get("RETAIL_AUTH", "none"))
    rest.add_argument("--api-key", default=os.environ.get("RETAIL_API_KEY"))
    rest.add_argument(
        "--idempotency",
        action="store_true",
        help="Deduplicate write operations by their Idempotency-Key header.",
    )
    rest.add_argument("--bearer-token", default=os.environ.get("RETAIL_BEARER_TOKEN"))
    rest.add_argument("--client-id", default=os.environ.get("RETAIL_CLIENT_ID"))
    rest.add_argument("--client-secret", default=os.environ.get("RETAIL_CLIENT_SECRET"))
    rest.add_argument(
        "--token-ttl",
        type=float,
        default=float(os.environ.get("RETAIL_TOKEN_TTL_SECONDS", "3600")),
        help="OAuth2 access-token lifetime in seconds",
    )

    mcp = commands.add_parser("mcp", parents=[common], help="serve the MCP server")
    mcp.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    mcp.add_argument("--port", type=int, default=8761)
    mcp.add_argument(
        "--admin-tools", action="store_true", help="also expose admin_reset and admin_state"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    store = RetailStore(options.db or default_db_path(), options.state_file)
    if options.command == "rest":
        import uvicorn

        from examples.retail.rest import create_app

        try:
            auth = AuthConfig(
                mode=options.auth,
                api_key=options.api_key,
                bearer_token=options.bearer_token,
                client_id=options.client_id,
                client_secret=options.client_secret,
                token_ttl_seconds=options.token_ttl,
            )
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(
            f"retail REST API on http://{options.host}:{options.port} "
            f"(OpenAPI at /openapi.json, auth: {auth.mode})",
            file=sys.stderr,
            flush=True,
        )
        uvicorn.run(
            create_app(store, auth, honour_idempotency_keys=options.idempotency),
            host=options.host,
            port=options.port,
        )
        return 0

    from examples.retail.mcp_server import MCP_PATH, create_mcp_http_app, run_stdio

    if options.transport == "stdio":
        run_stdio(store, admin_tools=options.admin_tools)
        return 0
    import uvicorn

    app = create_mcp_http_app(store, host=options.host, admin_tools=options.admin_tools)
    print(
        f"retail MCP server on http://{options.host}:{options.port}{MCP_PATH}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=options.host, port=options.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
