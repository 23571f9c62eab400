#!/usr/bin/env python3
"""Writes the product-listing fixtures: API Gateway HTTP API (payload format 2.0) request
events, as Lambda receives them, for `cargo lambda invoke --data-file`.

    python3 events/generate.py          # from the repository root; rewrites events/product-listing/*.json

Standard library only; the output is deterministic, so re-running it changes nothing unless
this script changed. `expected.json` (fixture -> expected status) is not written here.
"""

import base64
import copy
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "product-listing"

ACCOUNT_ID = "123456789012"
API_ID = "puhuiapi01"
DOMAIN = f"{API_ID}.execute-api.cn-north-1.amazonaws.com.cn"
SOURCE_IP = "203.0.113.10"  # documentation range (RFC 5737)
USER_AGENT = "curl/8.5.0"
TIME = "23/Nov/2025:01:00:00 +0000"
TIME_EPOCH_MS = 1763859600000

# Claims as an API Gateway JWT authorizer passes them on: every value a string, a JSON array
# rendered as "[a b]".
CLAIMS = {
    "iss": "https://auth.puhui.local",
    "aud": "puhui-banks",
    "sub": "officer-001",
    "bank_id": "nbcb",
    "roles": "[product_admin]",
    "exp": "4102444800",
    "iat": "1763856000",
}

PRODUCT = {
    "name": "Tax-credit loan",
    "description": "For firms with tax grade A or B",
    "product_type": "credit",
    "amount": {"min": 1000000, "max": 300000000},
    "term_months": {"min": 1, "max": 36},
    "annual_rate_bp": {"min": 345, "max": 900},
    "regions": ["330200"],
    "industries": ["C"],
    "conditions": [{"fact": "tax_credit_grade", "operator": "in", "value": ["A", "B"]}],
    "valid_from": "2026-01-01",
    "valid_to": "2027-12-31",
}

UNKNOWN_ID = "01JD0000000000000000000000"  # a well-formed ULID no product has


def compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def event(n, method, route, path, *, query=None, path_params=None, body=None, body_bytes=None,
          headers=None, claims=CLAIMS):
    """One request event. `route` is the API route (`/v1/products/{id}`), `path` the actual
    path. `body` is text; `body_bytes` arbitrary bytes (sent base64-encoded). `claims=None`
    leaves out the authorizer (a public route, or a request no authorizer has seen)."""
    query = query or {}
    raw_query = "&".join(f"{k}={v}" for k, v in query.items())
    h = {
        "accept": "application/json",
        "host": DOMAIN,
        "user-agent": USER_AGENT,
        "x-amzn-trace-id": f"Root=1-69225c90-{n:024x}",
        "x-forwarded-for": SOURCE_IP,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None or body_bytes is not None:
        length = len(body_bytes) if body_bytes is not None else len(body.encode("utf-8"))
        h["content-length"] = str(length)
        h["content-type"] = "application/json"
    h.update(headers or {})
    request_context = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": DOMAIN,
        "domainPrefix": API_ID,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": SOURCE_IP,
            "userAgent": USER_AGENT,
        },
        "requestId": f"Pu{n:02d}hFixtureId=",
        "routeKey": f"{method} {route}",
        "stage": "$default",
        "time": TIME,
        "timeEpoch": TIME_EPOCH_MS + n,
    }
    if claims is not None:
        request_context["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": None}}
    ev = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": dict(sorted(h.items())),
    }
    if query:
        ev["queryStringParameters"] = dict(query)
    if path_params:
        ev["pathParameters"] = dict(path_params)
    ev["requestContext"] = request_context
    if body_bytes is not None:
        ev["body"] = base64.b64encode(body_bytes).decode("ascii")
        ev["isBase64Encoded"] = True
    else:
        if body is not None:
            ev["body"] = body
        ev["isBase64Encoded"] = False
    return ev


def product_with(**changes):
    p = copy.deepcopy(PRODUCT)
    p.update(changes)
    return p


def fixtures():
    create = ("POST", "/v1/products", "/v1/products")
    one = lambda pid: ("/v1/products/{id}", f"/v1/products/{pid}", {"id": pid})  # noqa: E731

    route, path, params = one(UNKNOWN_ID)
    get_unknown = event(3, "GET", route, path, path_params=params)
    route, path, params = one("not-a-ulid")
    bad_path_id = event(8, "GET", route, path, path_params=params)
    route, path, params = one(UNKNOWN_ID)
    update = event(13, "PUT", route, path, path_params=params, body=compact(PRODUCT))

    oversized_product = product_with(description="x" * 80_000)

    return {
        "create.json": event(1, *create, body=compact(PRODUCT), headers={"idempotency-key": "demo-create-1"}),
        "list-own.json": event(2, "GET", "/v1/products", "/v1/products", query={"limit": "10"}),
        "get-unknown.json": get_unknown,
        "catalogue.json": event(
            4, "GET", "/v1/catalogue", "/v1/catalogue",
            query={"region": "330203", "amount": "50000000", "term": "12"}, claims=None,
        ),
        "bad-json.json": event(5, *create, body='{"name": "x",'),
        "unknown-field.json": event(6, *create, body=compact(product_with(colour="red"))),
        "invalid-uscc-like-values.json": event(
            7, *create, body=compact(product_with(amount={"min": 500, "max": 100}, regions=["33020"])),
        ),
        "bad-path-id.json": bad_path_id,
        "no-auth.json": event(9, *create, body=compact(PRODUCT), claims=None),
        "wrong-role.json": event(10, *create, body=compact(PRODUCT), claims={**CLAIMS, "roles": "[loan_officer]"}),
        "non-utf8-body.json": event(
            11, *create, body_bytes=bytes.fromhex("7B 22 6E 61 6D 65 22 3A 22 FF FE 22 7D"),
        ),
        "oversized.json": event(12, *create, body=compact(oversized_product)),
        "update-without-if-match.json": update,
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, ev in fixtures().items():
        (OUT / name).write_text(json.dumps(ev, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {OUT.name}/{name}")


if __name__ == "__main__":
    main()
