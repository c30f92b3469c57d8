"""How an agent is run and judged: knowledge, guardrails, channels, escalation, outcomes and
billing, autonomy and SLOs."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import EmailStr, Field, model_validator

from deputy.domain.spec.base import Identifier, Provenance, SpecModel, repeated

GuardrailPreset = Literal["minimal", "standard", "regulated"]
RetrievalMode = Literal["hybrid", "bm25", "vector"]
MessagingPlatform = Literal["slack", "telegram", "whatsapp", "sms"]
BillingModel = Literal["outcome_based", "consumption_based", "seat_based"]
AutonomyMode = Literal["proposal_only", "auto_with_rollback"]
Priority = Literal["low", "normal", "high", "urgent"]

Price = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=6)]


class KnowledgeSource(SpecModel):
    id: Identifier
    material: str | None = Field(
        default=None, max_length=64, description="The uploaded material indexed for retrieval."
    )
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)


class Knowledge(SpecModel):
    sources: tuple[KnowledgeSource, ...] = ()
    retrieval: RetrievalMode = "hybrid"
    top_k: int = Field(default=5, ge=1, le=50)

    @model_validator(mode="after")
    def _unique(self) -> Knowledge:
        dupes = repeated([s.id for s in self.sources])
        if dupes:
            raise ValueError(f"knowledge source ids must be unique; repeated: {dupes}")
        return self


class Guardrails(SpecModel):
    """A preset plus overrides; an unset override keeps the preset's choice."""

    preset: GuardrailPreset = "standard"
    forbidden_topics: tuple[str, ...] = ()
    disclaimers: tuple[str, ...] = ()
    mask_pii: bool | None = None
    require_grounding: bool | None = None
    detect_prompt_injection: bool | None = None


class ChatChannel(SpecModel):
    enabled: bool = True
    greeting: str | None = Field(default=None, max_length=1000)
    allow_uploads: bool = False


class EmailChannel(SpecModel):
    enabled: bool = False
    address: EmailStr | None = None
    signature: str | None = Field(default=None, max_length=2000)


class VoiceChannel(SpecModel):
    enabled: bool = False
    greeting: str | None = Field(default=None, max_length=1000)
    voice: str | None = Field(default=None, max_length=100)
    barge_in: bool = True


class MessagingChannel(SpecModel):
    enabled: bool = False
    platforms: tuple[MessagingPlatform, ...] = ()


class OpenAIChannel(SpecModel):
    enabled: bool = False


class Channels(SpecModel):
    chat: ChatChannel = ChatChannel()
    email: EmailChannel = EmailChannel()
    voice: VoiceChannel = VoiceChannel()
    messaging: MessagingChannel = MessagingChannel()
    openai: OpenAIChannel = OpenAIChannel()


class EscalationRule(SpecModel):
    id: Identifier
    when: str = Field(min_length=1, max_length=2000)
    queue: str | None = Field(default=None, max_length=100)
    priority: Priority = "normal"
    provenance: Provenance | None = None


class Escalation(SpecModel):
    default_queue: str = Field(default="support", min_length=1, max_length=100)
    rules: tuple[EscalationRule, ...] = ()
    on_customer_request: bool = True
    after_failed_turns: int = Field(default=3, ge=1, le=20)
    on_model_outage: bool = True
    message: str = Field(
        default="I'm handing you over to a colleague who can help with this.", max_length=1000
    )

    @model_validator(mode="after")
    def _unique(self) -> Escalation:
        dupes = repeated([r.id for r in self.rules])
        if dupes:
            raise ValueError(f"escalation rule ids must be unique; repeated: {dupes}")
        return self


class Billing(SpecModel):
    """What the client pays. Prices the model does not use may be set for mixed plans."""

    model: BillingModel
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    price_per_resolution: Price | None = Field(default=None, description="Per resolution.")
    price_per_conversation: Price | None = Field(default=None, description="Per conversation.")
    price_per_1k_tokens: Price | None = Field(default=None, description="Per 1,000 model tokens.")
    price_per_voice_minute: Price | None = Field(default=None, description="Per minute of voice.")
    price_per_seat_month: Price | None = Field(default=None, description="Per member per month.")
    free_resolutions_per_month: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _priced(self) -> Billing:
        needed = {
            "outcome_based": ("price_per_resolution",),
            "consumption_based": (
                "price_per_conversation",
                "price_per_1k_tokens",
                "price_per_voice_minute",
            ),
            "seat_based": ("price_per_seat_month",),
        }[self.model]
        if all(getattr(self, name) is None for name in needed):
            raise ValueError(f"a {self.model} plan needs one of {list(needed)}")
        return self


class Outcomes(SpecModel):
    resolved: str = Field(
        default="The customer's request was completed or fully answered.", max_length=2000
    )
    escalated: str = Field(default="The conversation was handed to a human.", max_length=2000)
    abandoned_after_minutes: int = Field(default=30, ge=1, le=10080)
    billing: Billing | None = None


class RollbackTriggers(SpecModel):
    """When a canary rolls back by itself, compared with the live version."""

    max_resolution_rate_drop: float = Field(default=0.05, ge=0, le=1)
    max_escalation_rate_rise: float = Field(default=0.05, ge=0, le=1)
    max_guardrail_violation_rate: float = Field(default=0.02, ge=0, le=1)
    max_error_rate: float = Field(default=0.02, ge=0, le=1)
    max_p95_latency_ms: int | None = Field(default=None, ge=1)


class Autonomy(SpecModel):
    mode: AutonomyMode = "proposal_only"
    canary_percent: int = Field(default=10, ge=1, le=50)
    min_canary_conversations: int = Field(default=50, ge=1)
    canary_hours: int = Field(default=24, ge=1, le=720)
    rollback_on: RollbackTriggers = RollbackTriggers()


class SLOs(SpecModel):
    availability: float = Field(default=0.995, gt=0, lt=1)
    latency_p95_ms: int = Field(default=5000, ge=100, description="Time to the agent's reply.")
    accuracy: float = Field(
        default=0.85, gt=0, le=1, description="Evaluated resolution quality over the window."
    )
    window_days: int = Field(default=28, ge=1, le=90)
