"""Assignar API simulator: a real HTTP server that behaves like the Assignar Operations API v2.

`SimulatorServer` runs it in a background thread; `Simulator` is its in-process state object.
"""

from .auth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SCOPE
from .data import DEFAULT_NOW, TenantConfig
from .server import SimulatorServer
from .state import Simulator

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_NOW",
    "SCOPE",
    "Simulator",
    "SimulatorServer",
    "TenantConfig",
]
