"""The `deputy` command line. Every command but `serve`, `quickstart`, `worker` and `bench` (which
run in this process) is a client of the HTTP API through `deputy.sdk`.

Exit codes: 0 success, 1 other error, 2 usage or invalid request, 3 authentication or
permission, 4 not found, 5 server (or the model it calls) unreachable or unavailable.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from deputy import __version__
from deputy.cli import auth, server
from deputy.cli.agents import agents_app
from deputy.cli.alerts import alerts_app, status_command
from deputy.cli.bench import bench_app
from deputy.cli.billing import billing_app
from deputy.cli.build import build, builds_app
from deputy.cli.channels import channels_app
from deputy.cli.conversations import chat, conversations_app
from deputy.cli.deployments import deployments_app
from deputy.cli.improve import improve_app
from deputy.cli.keys import keys_app
from deputy.cli.knowledge import knowledge_app
from deputy.cli.materials import materials_app
from deputy.cli.models import models_app
from deputy.cli.output import exit_code_for, report_error
from deputy.cli.probes import probes_app
from deputy.cli.proposals import audit_app, proposals_app
from deputy.cli.quickstart import quickstart
from deputy.cli.sandbox import sandbox_app
from deputy.cli.spec import spec_app
from deputy.cli.state import state
from deputy.cli.tools import tools_app
from deputy.cli.usage import usage_app
from deputy.cli.workspace import members_app, workspace_app, workspaces_app
from deputy.domain.errors import DeputyError


class DeputyGroup(TyperGroup):
    """Reports any Deputy error as code, message and request id, with its exit code."""

    def invoke(self, ctx: Any) -> Any:  # a typer Context (typer vendors click)
        try:
            return super().invoke(ctx)
        except DeputyError as error:
            report_error(error)
            raise typer.Exit(exit_code_for(error)) from None


app = typer.Typer(
    name="deputy",
    cls=DeputyGroup,
    help="Deputy: build, prove, review, deploy and improve AI agents.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deputy {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The server (default: DEPUTY_URL, then the saved login)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", help="The API key (default: DEPUTY_API_KEY, then the saved login)."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each answer.")
    ] = 30.0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    del version
    cli = state(ctx)
    cli.url = url or cli.url
    cli.api_key = api_key or cli.api_key
    cli.timeout = timeout


app.command("serve")(server.serve)
app.command("quickstart")(quickstart)
app.command("worker")(server.worker)
app.command("login")(auth.login)
app.command("logout")(auth.logout)
app.command("whoami")(auth.whoami)
app.command("chat")(chat)
app.command("build")(build)
app.command("status")(status_command)
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(workspace_app, name="workspace")
app.add_typer(members_app, name="members")
app.add_typer(keys_app, name="keys")
app.add_typer(materials_app, name="materials")
app.add_typer(agents_app, name="agents")
app.add_typer(spec_app, name="spec")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(models_app, name="models")
app.add_typer(tools_app, name="tools")
app.add_typer(conversations_app, name="conversations")
app.add_typer(builds_app, name="builds")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(bench_app, name="bench")
app.add_typer(proposals_app, name="proposals")
app.add_typer(deployments_app, name="deployments")
app.add_typer(channels_app, name="channels")
app.add_typer(probes_app, name="probes")
app.add_typer(audit_app, name="audit")
app.add_typer(improve_app, name="improve")
app.add_typer(alerts_app, name="alerts")
app.add_typer(billing_app, name="billing")
app.add_typer(usage_app, name="usage")


if __name__ == "__main__":
    app()
