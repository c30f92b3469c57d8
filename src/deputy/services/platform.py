"""What every service function needs: settings, the database, blob storage, secrets, models,
knowledge, and the live events of conversations."""

from __future__ import annotations

from dataclasses import dataclass, field

from deputy.config import Settings
from deputy.knowledge import KnowledgeBase
from deputy.observability.agent_metrics import AgentMetrics
from deputy.services.conversation_events import ConversationEvents
from deputy.services.knowledge_store import open_knowledge
from deputy.services.model_hub import ModelHub
from deputy.store.blobs import BlobStore
from deputy.store.db import Database
from deputy.store.secrets import SecretBox


@dataclass(frozen=True)
class Platform:
    settings: Settings
    db: Database
    blobs: BlobStore
    secrets: SecretBox
    models: ModelHub
    knowledge: KnowledgeBase
    events: ConversationEvents = field(default_factory=ConversationEvents)
    metrics: AgentMetrics = field(default_factory=AgentMetrics.create)

    @classmethod
    def open(cls, settings: Settings) -> Platform:
        settings.ensure_dirs()
        db = Database(settings.resolved_database_url)
        metrics = AgentMetrics.create()
        return cls(
            settings=settings,
            db=db,
            blobs=BlobStore(settings.materials_dir),
            secrets=SecretBox(settings.secret_key_value()),
            models=ModelHub(settings, db, metrics),
            knowledge=open_knowledge(settings, db),
            metrics=metrics,
        )

    def close(self) -> None:
        self.db.dispose()
