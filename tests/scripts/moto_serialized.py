"""moto's server, answering one request at a time.

moto runs requests on parallel threads without isolating them: concurrent conditional writes
can all pass their condition (seen: 4 of 10 concurrent `claims < 3` updates admitted) and a
cancelled transaction's rollback restores a snapshot that erases other requests' writes.
DynamoDB makes every request atomic. Serializing requests restores that, so the tests of our
concurrency invariants test our code rather than moto's races. Connections are still accepted
concurrently, and our SQS adapter short-polls (wait time 0), so no request holds the lock long.

    python moto_serialized.py HOST PORT
"""
import copy
import sys
import threading
import types

import moto.dynamodb.models as dynamodb_models

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def copy_each_table_once() -> None:
    """moto backs up the whole table once per operation of a transaction (a 17-operation
    transaction deep-copies the table 17 times) so that it can roll back. The backups are
    identical, so one copy per table and transaction is enough: memoize the table copies made
    during a transaction. Safe because requests are serialized (the module global is swapped
    only while one request runs)."""
    backend = dynamodb_models.DynamoDBBackend
    original = backend.transact_write_items

    def transact_write_items(self, transact_items):
        copies = {}

        def deepcopy(obj, *args):
            if not isinstance(obj, dynamodb_models.Table):
                return copy.deepcopy(obj, *args)
            # Keep the original referenced, so its id cannot be reused within the call.
            if id(obj) not in copies:
                copies[id(obj)] = (obj, copy.deepcopy(obj))
            return copies[id(obj)][1]

        dynamodb_models.copy = types.SimpleNamespace(deepcopy=deepcopy)
        try:
            return original(self, transact_items)
        finally:
            dynamodb_models.copy = copy

    backend.transact_write_items = transact_write_items


def main() -> None:
    copy_each_table_once()
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
