//! The API contract: the OpenAPI document generated from the handlers is complete (every route,
//! no dangling schema reference) and matches the committed `openapi.json`, so every contract
//! change shows up in review. Regenerate with `UPDATE_OPENAPI=1 cargo test -p puhui-api --test openapi`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

fn document() -> Value {
    serde_json::to_value(puhui_api::openapi()).unwrap()
}

#[test]
fn every_route_is_documented() {
    let doc = document();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let expected: BTreeSet<String> = [
        "POST /v1/products",
        "GET /v1/products",
        "GET /v1/products/{id}",
        "PUT /v1/products/{id}",
        "POST /v1/products/{id}/list",
        "POST /v1/products/{id}/delist",
        "GET /v1/catalogue",
        "POST /v1/applicant/login",
        "POST /v1/applicant/phone",
        "GET /v1/loan-codes/{scene}",
        "POST /v1/applicant/demands",
        "GET /v1/applicant/demands",
        "GET /v1/applicant/demands/{id}",
        "POST /v1/desk/loan-codes",
        "GET /v1/desk/loan-codes",
        "GET /v1/desk/demands",
        "GET /v1/desk/demands/{id}",
        "POST /v1/desk/demands/{id}/claim",
        "POST /v1/desk/demands/{id}/progress",
        "POST /v1/desk/demands/{id}/release",
        "PUT /v1/risk/rule-set",
        "GET /v1/risk/rule-set",
        "GET /v1/risk/rule-set/versions/{version}",
        "POST /v1/risk/rule-set/dry-run",
        "GET /v1/risk/watch-list",
        "POST /v1/risk/watch-list/bulk",
        "PUT /v1/risk/watch-list/{uscc}",
        "DELETE /v1/risk/watch-list/{uscc}",
        "GET /v1/risk/alerts",
        "GET /v1/risk/alerts/{id}",
        "POST /v1/risk/alerts/{id}/actions",
        "GET /v1/risk/stats",
        "GET /v1/risk/settings",
        "PUT /v1/risk/settings",
        "GET /v1/risk/scans",
        "GET /v1/risk/scans/{id}",
        "POST /v1/scores",
        "POST /v1/scoring-jobs",
        "GET /v1/scoring-jobs/{id}",
        "GET /v1/models",
        "GET /v1/models/{name}",
        "POST /v1/models/{name}/versions",
        "GET /v1/models/{name}/versions",
        "POST /v1/models/{name}/activate",
        "POST /v1/models/{name}/rollback",
        "PUT /v1/models/{name}/challenger",
        "GET /v1/firms/{uscc}/interfaces/{interface}",
        "GET /v1/interfaces",
        "GET /v1/audit",
        "GET /v1/applicant/authorizations",
        "POST /v1/applicant/authorizations",
        "POST /v1/screening",
        "POST /v1/applicant/authorizations/{id}/revoke",
        "POST /v1/exports",
        "GET /v1/exports/{id}",
        "GET /v1/data-quality/reports/{date}",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(routes, expected);
}

fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.insert(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_schema_reference_resolves() {
    let doc = document();
    let mut found = BTreeSet::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} is referenced but not defined"
        );
    }
}

#[test]
fn committed_document_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated = serde_json::to_string_pretty(&document()).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "shared/api/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p puhui-api --test openapi` and review the diff"
    );
}
