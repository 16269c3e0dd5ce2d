"""A local stand-in for DashScope and Zhipu BigModel's video APIs, as strict as their docs."""

from simulator.app import create_app
from simulator.config import SimConfig, Timing

__all__ = ["SimConfig", "Timing", "create_app"]
