"""Tools: the agent's action space on the client's headless platform.

Each tool binds a name the procedures use to one operation of a tool source registered in the
workspace (an imported OpenAPI document, an MCP server, a plain HTTP webhook) or to a built-in.
Its effect tier, limits, timeout and retries are enforced by `deputy.tools`, not by the prompt."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue, model_validator

from deputy.domain.spec.base import ArgumentLimit, EffectTier, Identifier, SpecModel

BuiltinTool = Literal["handoff", "lookup_knowledge", "remember_fact", "end_conversation"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class OpenAPIBinding(SpecModel):
    kind: Literal["openapi"] = "openapi"
    source: Identifier = Field(description="The workspace tool source (an imported document).")
    operation: str = Field(min_length=1, max_length=200, description="The operationId.")


class MCPBinding(SpecModel):
    kind: Literal["mcp"] = "mcp"
    source: Identifier = Field(description="The workspace tool source (an MCP server).")
    tool: str = Field(min_length=1, max_length=200, description="The MCP tool's name.")


class HTTPBinding(SpecModel):
    """A plain webhook. The URL may hold `{param}` placeholders filled from the arguments; the
    other arguments go in the query (GET, DELETE) or the JSON body."""

    kind: Literal["http"] = "http"
    method: HttpMethod = "POST"
    url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    source: Identifier | None = Field(
        default=None, description="A workspace tool source whose credentials sign the call."
    )


class BuiltinBinding(SpecModel):
    kind: Literal["builtin"] = "builtin"
    builtin: BuiltinTool


ToolBinding = Annotated[
    OpenAPIBinding | MCPBinding | HTTPBinding | BuiltinBinding, Field(discriminator="kind")
]


class Tool(SpecModel):
    name: Identifier
    description: str = Field(default="", max_length=2000)
    effect: EffectTier
    binding: ToolBinding
    parameters: dict[str, JsonValue] | None = Field(
        default=None,
        description="JSON Schema of the arguments; when unset, the source's schema is used.",
    )
    limits: tuple[ArgumentLimit, ...] = ()
    max_calls_per_conversation: int | None = Field(default=None, ge=1, le=1000)
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    retries: int = Field(
        default=0, ge=0, le=5, description="Retries on timeouts and 5xx; read tools only."
    )

    @model_validator(mode="after")
    def _retries_for_reads_only(self) -> Tool:
        if self.retries and self.effect != "read":
            raise ValueError(
                f"tool {self.name!r}: only read tools may retry; a {self.effect} call could repeat"
            )
        return self
