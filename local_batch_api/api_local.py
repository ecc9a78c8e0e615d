"""Endpoints of this server only (not OpenAI's): health, and fault injection at run time."""

from __future__ import annotations

from fastapi import APIRouter, Request

from local_batch_api.faults import ApiFaultDice, Faults
from local_batch_api.request_parsing import json_object

router = APIRouter(prefix="/_local")


@router.get("/health")
async def health(request: Request) -> dict:
    settings = request.app.state.server.settings
    return {"status": "ok", "engine": settings.engine}


@router.get("/faults")
async def get_faults(request: Request) -> dict:
    return request.app.state.server.fault_dice.faults.to_dict()


@router.put("/faults")
async def put_faults(request: Request) -> dict:
    """Replace the server-wide faults; batches created afterwards inherit them."""
    server = request.app.state.server
    faults = Faults.from_mapping(await json_object(request))
    server.fault_dice = ApiFaultDice(faults)
    return faults.to_dict()
