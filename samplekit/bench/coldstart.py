#!/usr/bin/env python3
"""Cold start of a Puhui Lambda under the cargo-lambda emulator.

Measures the time from process start (exec of the release `bootstrap`) to the first response
delivered through the emulator's invoke API, over fresh processes. The function builds its AWS
SDK clients and token verifier at start, then answers a public catalogue query that reads
DynamoDB (a local moto server), so the figure includes a real first call through the SDK.

Run through the Makefile target (`make bench-coldstart`), which builds the binary with
`cargo lambda build --release` and starts moto; or by hand:
    tests/scripts/with-moto.sh python3 samplekit/bench/coldstart.py --runs 30
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import boto3  # installed with moto


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--binary", default="target/lambda/product-listing/bootstrap")
    ap.add_argument("--event", default="events/product-listing/catalogue.json")
    ap.add_argument("--cargo-lambda", default=".venv/bin/cargo-lambda")
    args = ap.parse_args()

    endpoint = os.environ.get("PUHUI_TEST_AWS_ENDPOINT")
    if not endpoint:
        sys.exit("PUHUI_TEST_AWS_ENDPOINT is not set: run through tests/scripts/with-moto.sh")
    creds = dict(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    table = "puhui-coldstart"
    try:
        ddb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "gsi1", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                                                   {"AttributeName": "gsi1sk", "KeyType": "RANGE"}]}])
    except ddb.exceptions.ResourceInUseException:
        pass

    port = free_port()
    emulator = subprocess.Popen(
        [args.cargo_lambda, "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        event = open(args.event, "rb").read()
        env = dict(os.environ, **creds, AWS_ENDPOINT_URL=endpoint, PUHUI_TABLE=table,
                   AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{port}/.rt", AWS_LAMBDA_FUNCTION_NAME="_",
                   AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
                   RUST_LOG="warn")
        samples = []
        for _ in range(args.runs):
            result = {}

            def invoke() -> None:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/2015-03-31/functions/_/invocations", data=event, method="POST")
                with urllib.request.urlopen(req, timeout=30) as resp:
                    result["body"] = json.loads(resp.read())
                result["done"] = time.perf_counter()

            caller = threading.Thread(target=invoke)
            caller.start()
            time.sleep(0.3)  # the invocation is queued in the emulator before the process starts
            started = time.perf_counter()
            fn = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            caller.join(timeout=30)
            fn.kill()
            fn.wait()
            if "done" not in result or result["body"].get("statusCode") != 200:
                sys.exit(f"invocation failed: {result}")
            samples.append((result["done"] - started) * 1000)
        samples.sort()
        p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
        size = os.path.getsize(args.binary)
        print(json.dumps({
            "binary": args.binary, "binary_bytes": size, "runs": len(samples),
            "start_to_first_response_ms": {"min": round(samples[0], 2), "median": round(statistics.median(samples), 2),
                                           "p90": round(p90, 2), "max": round(samples[-1], 2)}}, indent=2))
    finally:
        emulator.terminate()
        emulator.wait()


if __name__ == "__main__":
    main()
