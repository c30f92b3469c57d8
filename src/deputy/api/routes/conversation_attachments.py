"""Scaffold: filled in by this issue's channel work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
