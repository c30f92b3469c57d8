from __future__ import annotations

from fastapi import APIRouter, status

from deputy.api.deps import PlatformDep, PrincipalDep
from deputy.domain import resources as r
from deputy.domain.resources import ErrorBody
from deputy.services import model_endpoints as endpoints
from deputy.services import models

router = APIRouter(tags=["models"])


@router.post(
    "/model-endpoints", status_code=status.HTTP_201_CREATED, response_model=r.ModelEndpoint
)
def create_endpoint(
    body: r.ModelEndpointCreate, platform: PlatformDep, principal: PrincipalDep
) -> r.ModelEndpoint:
    """Add an OpenAI-compatible server (vLLM, Ollama, llama.cpp, OpenRouter, Azure); its models
    are then named `openai-compatible:<name>/<model>`. The key is stored encrypted."""
    return endpoints.create_endpoint(platform, principal, body)


@router.get("/model-endpoints", response_model=list[r.ModelEndpoint])
def list_endpoints(platform: PlatformDep, principal: PrincipalDep) -> list[r.ModelEndpoint]:
    return endpoints.list_endpoints(platform, principal)


@router.delete("/model-endpoints/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_endpoint(name: str, platform: PlatformDep, principal: PrincipalDep) -> None:
    endpoints.delete_endpoint(platform, principal, name)


@router.get("/models", response_model=r.ModelCatalog)
def list_models(platform: PlatformDep, principal: PrincipalDep) -> r.ModelCatalog:
    """The local catalog with each model's state, configured endpoints and hosted providers."""
    return models.list_models(platform, principal)


@router.post(
    "/models/try",
    response_model=r.ModelTryResult,
    responses={
        502: {"model": ErrorBody, "description": "The model failed or could not comply"},
        503: {"model": ErrorBody, "description": "The model is unavailable or not installed"},
    },
)
async def try_model(
    body: r.ModelTry, platform: PlatformDep, principal: PrincipalDep
) -> r.ModelTryResult:
    """Send one prompt to a model (default: the workspace's); metered to the workspace."""
    return await models.try_model(platform, principal, body)
