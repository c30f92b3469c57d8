"""`deputy chat`: talk to an agent from the terminal, its replies streamed as they are written;
`deputy conversations`: list conversations and read a transcript."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from deputy.cli import listing
from deputy.cli.output import (
    EXIT_ERROR,
    AsJson,
    Column,
    err,
    out,
    print_fields,
    print_json,
    print_page,
    when,
)
from deputy.cli.state import client
from deputy.cli.transcript import transcript_table
from deputy.domain.resources import Conversation, ConversationStatus
from deputy.sdk import DeputyClient

conversations_app = typer.Typer(
    help="Conversations with agents: list them, read transcripts.", no_args_is_help=True
)

QUIT = "/quit"
ConversationId = Annotated[
    str, typer.Argument(metavar="CONVERSATION_ID", help="The conversation's id (conv_…).")
]
CONVERSATION_COLUMNS: list[Column[Conversation]] = [
    ("ID", lambda c: c.id),
    ("AGENT", lambda c: c.current_agent_id),
    ("STATUS", lambda c: c.status),
    ("OUTCOME", lambda c: c.outcome or "-"),
    ("CHANNEL", lambda c: c.channel),
    ("QUEUE", lambda c: c.queue or "-"),
    ("ENTRIES", lambda c: str(c.last_seq)),
    ("UPDATED", lambda c: when(c.updated_at)),
]
_STATUS_NOTES: dict[str, str] = {
    "queued": "The conversation is waiting for a human (queue {queue}).",
    "human": "A human has taken over the conversation.",
    "closed": "The conversation is closed.",
}


def _note(message: str) -> None:
    err().print(message, markup=False, style="dim")


def _say(sdk: DeputyClient, conversation_id: str, text: str, prefix: str) -> Conversation | None:
    """Send one message and print the reply as it streams; the conversation after the turn
    (None when the turn failed)."""
    printed = False
    for event in sdk.conversations.stream(conversation_id, text):
        if event.type == "reply.delta" and event.text:
            if not printed:
                typer.echo(prefix, nl=False)
                printed = True
            typer.echo(event.text, nl=False)
        elif event.type == "entry" and event.entry is not None:
            entry = event.entry
            if entry.kind in ("agent_message", "human_message") and not printed:
                typer.echo(prefix + entry.text, nl=False)
                printed = True
            elif entry.kind == "handoff":
                _note(f"(handed off: {entry.text or entry.data.get('reason', '')})")
        elif event.type == "turn.failed":
            if printed:
                typer.echo()
            err().print(f"error: the turn failed: {event.text}", markup=False, style="red")
            return None
        elif event.type == "turn.completed":
            if printed:
                typer.echo()
            return event.conversation
    return None


def _greeting(sdk: DeputyClient, conversation: Conversation, prefix: str) -> None:
    for entry in sdk.conversations.iter_transcript(conversation.id):
        if entry.kind == "agent_message":
            typer.echo(prefix + entry.text)


def _read_line() -> str | None:
    """The next line typed (None at the end of the input)."""
    err().print("you> ", end="", markup=False)
    line = sys.stdin.readline()
    return line.strip() if line else None


def chat(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(metavar="AGENT_ID", help="The agent's id (agt_…).")],
    messages: Annotated[
        list[str] | None,
        typer.Option(
            "--message",
            "-m",
            help="Send this message and print the reply, without prompting (repeatable).",
        ),
    ] = None,
    conversation_id: Annotated[
        str | None,
        typer.Option("--conversation", help="Continue this conversation instead of a new one."),
    ] = None,
) -> None:
    """Talk to an agent: type messages, read its replies as they stream; `/quit` ends. Exits
    with 1 when a turn failed."""
    if chat_session(client(ctx), agent_id, messages or [], conversation_id):
        raise typer.Exit(EXIT_ERROR)


def chat_session(
    sdk: DeputyClient,
    agent_id: str,
    messages: list[str],
    conversation_id: str | None = None,
    *,
    channel: str | None = None,
) -> int:
    """Send `messages` (none: read lines typed on stdin until `/quit` or the end of the
    input) and print the replies; the number of turns that failed."""
    interactive = not messages
    prefix = "agent> " if interactive else ""
    if conversation_id is None:
        conversation = sdk.conversations.create(agent_id, channel=channel)
        _note(f"Conversation {conversation.id} with {agent_id}.")
        _greeting(sdk, conversation, prefix)
    else:
        conversation = sdk.conversations.get(conversation_id)
    pending = list(messages)
    failed = 0
    while True:
        if not pending:
            line = _read_line() if interactive else None
            if line is None:
                break
            pending.append(line)
        text = pending.pop(0)
        if text == QUIT:
            break
        if not text:
            continue
        after = _say(sdk, conversation.id, text, prefix)
        failed += after is None
        if after is not None and after.status in _STATUS_NOTES:
            _note(_STATUS_NOTES[after.status].format(queue=after.queue or "default"))
            if after.status == "closed":
                break
    _note(f"Transcript: deputy conversations show {conversation.id}")
    return failed


@conversations_app.command("list")
def list_conversations(
    ctx: typer.Context,
    agent_id: Annotated[str | None, typer.Option("--agent", help="One agent's only.")] = None,
    status: Annotated[
        ConversationStatus | None, typer.Option("--status", help="Only in this status.")
    ] = None,
    customer_id: Annotated[
        str | None, typer.Option("--customer", help="One customer's only (cus_…).")
    ] = None,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List conversations, newest first."""
    api = client(ctx).conversations
    page = listing.fetch(
        lambda n, c: api.list(
            agent_id=agent_id, status=status, customer_id=customer_id, limit=n, cursor=c
        ),
        limit,
        cursor,
        all_pages,
    )
    print_page(page, CONVERSATION_COLUMNS, as_json=as_json, noun="conversations")


@conversations_app.command("show")
def show_conversation(
    ctx: typer.Context,
    conversation_id: ConversationId,
    steps: Annotated[
        bool, typer.Option("--steps", help="Include model steps and knowledge searches.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Show a conversation and its transcript: messages, tool calls, guardrail decisions."""
    sdk = client(ctx)
    conversation = sdk.conversations.get(conversation_id)
    entries = list(sdk.conversations.iter_transcript(conversation_id))
    if as_json:
        print_json({"conversation": conversation, "entries": entries})
        return
    print_fields(conversation, as_json=False, skip=("outcome_evidence",))
    out().print()
    if not entries:
        out().print("No entries yet.")
        return
    out().print(transcript_table(entries, steps=steps))
