"""moto's S3 server as an S3-protocol stand-in (NOT MinIO or AWS) for tier-1 and tier-2 tests.

It speaks the HTTP API the ``minio`` client uses against MinIO, S3 and R2 (SigV4, multipart,
HEAD, presigned GET) on 127.0.0.1; its object store lives in the test process, so a stopped and
restarted server still has what was stored before (as a MinIO with a disk would).
"""

from __future__ import annotations


class S3StandIn:
    """moto's S3 server on 127.0.0.1 that a test can stop (listening socket closed: connections
    are refused) and start again on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self._server = None

    def start(self) -> "S3StandIn":
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            inner = getattr(self._server, "_server", None)
            if inner is not None:
                inner.server_close()  # stop() leaves the socket listening; a stopped server refuses
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"
