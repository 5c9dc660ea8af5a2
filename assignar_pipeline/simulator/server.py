"""Run the simulator over real HTTP: uvicorn in a background thread on 127.0.0.1.

with SimulatorServer() as server:
    httpx.post(server.token_url, ...); httpx.get(server.api_url + "/users", ...)
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from .app import SimulatorApp, TenantsApp, quiet_uvicorn_drops
from .data import TenantConfig
from .state import Simulator


class SimulatorServer:
    """Context manager owning a `Simulator` and the uvicorn server thread that serves it."""

    def __init__(
        self,
        simulator: Simulator | None = None,
        *,
        config: TenantConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        startup_timeout: float = 30.0,
        tenants: dict[str, Simulator] | None = None,
        **simulator_options: Any,
    ) -> None:
        """`tenants` (client id → Simulator) serves several tenants on one port (`TenantsApp`);
        `simulator` is then the first of them."""
        self.tenants = tenants
        if tenants:
            simulator = next(iter(tenants.values()))
        self.simulator = simulator or Simulator(config, **simulator_options)
        self.host = host
        self.port = port
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def state(self) -> Simulator:
        return self.simulator

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/v2"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth2/token"

    @property
    def control_url(self) -> str:
        return self.base_url + "/_simulator"

    def start(self) -> SimulatorServer:
        if self._thread is not None:
            return self
        # Bind the socket ourselves so port=0 yields a known free port before uvicorn starts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        self._sock = sock
        quiet_uvicorn_drops()
        config = uvicorn.Config(
            TenantsApp(self.tenants) if self.tenants else SimulatorApp(self.simulator),
            log_level=self.log_level,
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="assignar-simulator",
            daemon=True,
        )
        self._thread.start()
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("simulator server thread exited during startup")
            if time.monotonic() > deadline:
                raise TimeoutError("simulator server did not start")
            time.sleep(0.005)
        # `started` is set once the socket is being served; confirm with a real connection.
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
