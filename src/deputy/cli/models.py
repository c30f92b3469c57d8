"""`deputy models` and `deputy models endpoints`: the models a workspace can use, a prompt to
one of them, and the workspace's OpenAI-compatible model servers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from deputy.cli.output import (
    EXIT_USAGE,
    AsJson,
    Column,
    err,
    fail,
    out,
    print_fields,
    print_json,
    size,
    table,
    when,
)
from deputy.cli.state import client
from deputy.domain.resources import LocalModelInfo, ModelCatalog, ModelEndpoint, ModelTryResult
from deputy.sdk.client import MODEL_TIMEOUT

models_app = typer.Typer(
    help="Models: what your workspace can use, and a prompt to try one.", no_args_is_help=True
)
endpoints_app = typer.Typer(
    help="OpenAI-compatible model servers of your workspace (vLLM, Ollama, llama.cpp, …).",
    no_args_is_help=True,
)
models_app.add_typer(endpoints_app, name="endpoints")

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

_STATES = {"not_installed": "not installed", "installed": "installed", "assembled": "assembled"}

LOCAL_COLUMNS: list[Column[LocalModelInfo]] = [
    ("NAME", lambda m: m.name),
    ("STATE", lambda m: _STATES.get(m.state, m.state)),
    ("SIZE", lambda m: size(m.size_bytes)),
    ("DEFAULT", lambda m: "*" if m.is_default else ""),
]
ENDPOINT_COLUMNS: list[Column[ModelEndpoint]] = [
    ("NAME", lambda e: e.name),
    ("BASE URL", lambda e: e.base_url),
    ("API KEY", lambda e: "stored" if e.has_api_key else "none"),
    ("MODELS", lambda e: f"openai-compatible:{e.name}/<model>"),
    ("CREATED", lambda e: when(e.created_at)),
]


def _print_catalog(catalog: ModelCatalog) -> None:
    console = out()
    if catalog.local:
        console.print(table(catalog.local, LOCAL_COLUMNS, title="Local models"))
    else:
        console.print("No local models.")
    for model in catalog.local:
        if model.state == "not_installed" and model.install_command:
            # Printed whole (never cut to the terminal's width): it is meant to be copied.
            console.print(f"To install {model.name}:", markup=False)
            console.print(f"  {model.install_command}", markup=False, soft_wrap=True)
    platform = (
        "the platform default"
        if catalog.default_model == catalog.platform_default
        else f"platform default: {catalog.platform_default}"
    )
    console.print(f"Default model: {catalog.default_model} ({platform})", markup=False)
    if catalog.fallback_models:
        console.print(f"Fallbacks: {', '.join(catalog.fallback_models)}", markup=False)
    endpoints = ", ".join(f"openai-compatible:{name}/<model>" for name in catalog.endpoints)
    console.print(f"Endpoints: {endpoints or '-'}", markup=False)
    hosted = ", ".join(
        f"{provider} ({'configured' if ready else 'no key'})"
        for provider, ready in sorted(catalog.hosted.items())
    )
    console.print(f"Hosted providers: {hosted or '-'}", markup=False)
    warnings = err()
    for model in catalog.local:
        for problem in model.problems:
            warnings.print(f"warning: {model.name}: {problem}", markup=False, style="yellow")


@models_app.command("list")
def list_models(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List the models your workspace can use.

    The local models with their state, your workspace's default, endpoints, hosted providers."""
    catalog = client(ctx).models.list()
    if as_json:
        print_json(catalog)
        return
    _print_catalog(catalog)


def read_schema(path: Path) -> dict[str, Any]:
    """A JSON Schema from a `.json` file: it must hold an object."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {path}: {exc}", EXIT_USAGE) from exc
    except ValueError as exc:
        raise fail(f"{path} is not valid JSON: {exc}", EXIT_USAGE) from exc
    if not isinstance(schema, dict):
        raise fail(
            f"{path} must hold a JSON Schema object, not {type(schema).__name__}", EXIT_USAGE
        )
    return schema


def _print_answer(result: ModelTryResult, *, structured: bool) -> None:
    if structured and result.parsed is not None:
        typer.echo(json.dumps(result.parsed, indent=2, ensure_ascii=False))
    else:
        typer.echo(result.text)
    err().print(
        f"model {result.model} · tokens {result.input_tokens} in, {result.output_tokens} out · "
        f"{result.latency_seconds:.2f} s · finish {result.finish_reason}",
        markup=False,
        style="dim",
    )


@models_app.command("try")
def try_model(
    ctx: typer.Context,
    arguments: Annotated[
        list[str],
        typer.Argument(
            metavar="[MODEL] PROMPT",
            help="Optionally the `provider:model`, then what to ask (`-` reads it from stdin).",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", help="`provider:model` (default: your workspace's model)."),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="A system prompt.")] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema",
            metavar="FILE.json",
            help="A JSON Schema the answer must satisfy; prints the parsed JSON.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, max=4096, help="At most this many tokens.")
    ] = 256,
    temperature: Annotated[
        float | None, typer.Option("--temperature", min=0.0, max=2.0, help="Sampling temperature.")
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=1.0,
            help="Seconds to wait for the answer (a local model may take a minute).",
        ),
    ] = MODEL_TIMEOUT,
    as_json: AsJson = False,
) -> None:
    """Send one prompt to a model and print its answer.

    Model, tokens and latency go to stderr; the call is metered to your workspace."""
    if len(arguments) == 2:
        if model is not None:
            raise fail("name the model once: as the first argument or with --model", EXIT_USAGE)
        model, prompt = arguments
    elif len(arguments) == 1:
        (prompt,) = arguments
    else:
        raise fail("give a prompt, optionally after the model: [MODEL] PROMPT", EXIT_USAGE)
    if prompt == "-":
        prompt = sys.stdin.read().strip()
        if not prompt:
            raise fail("the prompt read from stdin is empty", EXIT_USAGE)
    response_schema = read_schema(schema) if schema is not None else None
    result = client(ctx).models.run(
        prompt,
        model=model,
        system=system,
        response_schema=response_schema,
        max_tokens=max_tokens,
        temperature=temperature,
        timeout=timeout,
    )
    if as_json:
        print_json(result)
        return
    _print_answer(result, structured=response_schema is not None)


def _read_api_key(env_var: str | None, from_stdin: bool) -> str | None:
    """The endpoint's key, from an environment variable or stdin; never from an argument, so
    it stays out of shell history and process listings."""
    if env_var is not None and from_stdin:
        raise fail("give --api-key-env or --api-key-stdin, not both", EXIT_USAGE)
    if env_var is not None:
        secret = os.environ.get(env_var, "").strip()
        if not secret:
            raise fail(f"the environment variable {env_var} is not set or empty", EXIT_USAGE)
        return secret
    if from_stdin:
        if sys.stdin.isatty():
            secret = typer.prompt("API key", hide_input=True).strip()
        else:
            secret = sys.stdin.read().strip()
        if not secret:
            raise fail("no API key on stdin", EXIT_USAGE)
        return secret
    return None


@endpoints_app.command("add")
def add_endpoint(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="Lowercase letters, digits, `-` and `_`."),
    ],
    base_url: Annotated[
        str,
        typer.Argument(metavar="BASE_URL", help="The server's OpenAI API, e.g. http://host/v1."),
    ],
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env", metavar="VAR", help="Read the server's API key from this variable."
        ),
    ] = None,
    api_key_stdin: Annotated[
        bool, typer.Option("--api-key-stdin", help="Read the server's API key from stdin.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Add an OpenAI-compatible model server.

    Its models are then named `openai-compatible:NAME/<model>`. The key comes from an
    environment variable or stdin, never an argument; it is stored encrypted, never shown."""
    api_key = _read_api_key(api_key_env, api_key_stdin)
    endpoint = client(ctx).model_endpoints.create(name, base_url, api_key)
    if as_json:
        print_json(endpoint)
        return
    print_fields(endpoint, as_json=False)
    err().print(
        f"Use its models as openai-compatible:{endpoint.name}/<model>.", markup=False, style="dim"
    )


@endpoints_app.command("list")
def list_endpoints(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List your workspace's model servers (their keys are never shown)."""
    endpoints = client(ctx).model_endpoints.list()
    if as_json:
        print_json(endpoints)
        return
    if not endpoints:
        out().print("No model endpoints.")
        return
    out().print(table(endpoints, ENDPOINT_COLUMNS))


@endpoints_app.command("remove")
def remove_endpoint(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The endpoint's name.")],
    yes: Yes = False,
) -> None:
    """Remove a model server and its stored key."""
    if not yes:
        typer.confirm(f"Remove model endpoint {name!r} and its stored key?", abort=True)
    client(ctx).model_endpoints.delete(name)
    out().print(f"Removed model endpoint {name}.", markup=False)
