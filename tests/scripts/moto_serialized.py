"""moto's server, answering one request at a time.

moto runs requests on parallel threads without isolating them: concurrent conditional writes
can all pass their condition (seen: 4 of 10 concurrent `claims < 3` updates admitted) and a
cancelled transaction's rollback restores a snapshot that erases other requests' writes.
DynamoDB makes every request atomic. Serializing requests restores that, so the tests of our
concurrency invariants test our code rather than moto's races. Connections are still accepted
concurrently, and our SQS adapter short-polls (wait time 0), so no request holds the lock long.

    python moto_serialized.py HOST PORT
"""
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # The whole response is produced inside the lock.
            return list(app(environ, start_response))

    run_simple(host, port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
