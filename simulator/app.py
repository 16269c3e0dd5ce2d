"""Assembly: one ASGI app serving both vendors, the result host and the control API."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from simulator import bigmodel, control, dashscope, results
from simulator.config import SimConfig
from simulator.connection import remember_connection
from simulator.context import Sim


class SimulatorApp(Starlette):
    """Starlette, plus a hold on the server's connection so faults can drop it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            remember_connection(scope, send)
        await super().__call__(scope, receive, send)


def create_app(config: SimConfig | None = None) -> Starlette:
    """A fresh simulator; its shared state is `app.state.sim` (a `simulator.context.Sim`)."""
    sim = Sim(config or SimConfig())
    app = SimulatorApp(
        routes=[
            *dashscope.routes(sim),
            *bigmodel.routes(sim),
            *results.routes(sim),
            *control.routes(sim),
        ]
    )
    app.state.sim = sim
    return app
