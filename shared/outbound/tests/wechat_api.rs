//! `WeChatApi` against a local fake of the WeChat server API.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use puhui_outbound::wechat::{WeChatApi, WeChatConfig};
use puhui_ports::{VerifiedPhone, WeChatError, WeChatIdentity};
use serde_json::{Value, json};

const APP_ID: &str = "wxPUHUI0001";
const SECRET: &str = "APP-SECRET-do-not-log";
const SESSION_KEY: &str = "SESSION-KEY-do-not-leak";
const PHONE: &str = "13812345678";

/// What the fake saw and how it should behave.
#[derive(Default)]
struct Fake {
    token_hits: AtomicUsize,
    /// `expires_in` the token endpoint answers (0 means the default 7200).
    expires_in: AtomicU64,
    /// An errcode the token endpoint answers with instead of a token.
    token_errcode: Mutex<Option<i64>>,
    /// Tokens the phone endpoint refuses with 40001.
    revoked: Mutex<HashSet<String>>,
    /// (access_token, code) of every phone call.
    phone_calls: Mutex<Vec<(String, String)>>,
}

type Shared = State<Arc<Fake>>;

fn err(code: i64) -> Response {
    Json(json!({"errcode": code, "errmsg": format!("fake error {code}")})).into_response()
}

fn credentials_ok(q: &HashMap<String, String>) -> bool {
    q.get("appid").map(String::as_str) == Some(APP_ID)
        && q.get("secret").map(String::as_str) == Some(SECRET)
}

async fn code2session(Query(q): Query<HashMap<String, String>>) -> Response {
    if !credentials_ok(&q) || q.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return err(40013);
    }
    let code = q.get("js_code").cloned().unwrap_or_default();
    if let Some(n) = code.strip_prefix("err:") {
        return err(n.parse().unwrap());
    }
    match code.as_str() {
        "good" => {
            Json(json!({"openid": "o-good", "session_key": SESSION_KEY, "unionid": "u-good"}))
                .into_response()
        }
        "no-union" => Json(json!({"openid": "o-2", "session_key": SESSION_KEY})).into_response(),
        "no-openid" => Json(json!({"session_key": SESSION_KEY})).into_response(),
        "http500" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "garbage" => (StatusCode::OK, format!("<html>{SESSION_KEY}</html>")).into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Json(json!({"openid": "o-slow", "session_key": SESSION_KEY})).into_response()
        }
        _ => err(40029),
    }
}

async fn token(State(fake): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    if !credentials_ok(&q) || q.get("grant_type").map(String::as_str) != Some("client_credential") {
        return err(40013);
    }
    let n = fake.token_hits.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(code) = *fake.token_errcode.lock().unwrap() {
        return err(code);
    }
    let expires_in = match fake.expires_in.load(Ordering::SeqCst) {
        0 => 7200,
        e => e,
    };
    Json(json!({"access_token": format!("tok-{n}"), "expires_in": expires_in})).into_response()
}

async fn phone(
    State(fake): Shared,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    let token = q.get("access_token").cloned().unwrap_or_default();
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    fake.phone_calls
        .lock()
        .unwrap()
        .push((token.clone(), code.clone()));
    if !token.starts_with("tok-") || fake.revoked.lock().unwrap().contains(&token) {
        return err(40001);
    }
    if let Some(n) = code.strip_prefix("err:") {
        return err(n.parse().unwrap());
    }
    let info = |appid: Option<&str>, country: Value, pure: &str| {
        let mut info = json!({
            "phoneNumber": pure,
            "purePhoneNumber": pure,
            "countryCode": country,
        });
        if let Some(appid) = appid {
            info["watermark"] = json!({"appid": appid, "timestamp": 1_700_000_000});
        }
        Json(json!({"errcode": 0, "errmsg": "ok", "phone_info": info})).into_response()
    };
    match code.as_str() {
        "good" => info(Some(APP_ID), json!("86"), PHONE),
        "hk" => info(Some(APP_ID), json!(852), "91234567"),
        "other-app" => info(Some("wxSOMEONE-ELSE"), json!("86"), PHONE),
        "no-watermark" => info(None, json!("86"), PHONE),
        "expired-token" => err(42001),
        "http503" => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        _ => err(40029),
    }
}

async fn start() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/sns/jscode2session", get(code2session))
        .route("/cgi-bin/token", get(token))
        .route("/wxa/business/getuserphonenumber", post(phone))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, base)
}

fn config(base_url: &str) -> WeChatConfig {
    WeChatConfig {
        app_id: APP_ID.into(),
        app_secret: SECRET.into(),
        // A trailing slash must not produce `//sns/...`.
        base_url: format!("{base_url}/"),
    }
}

fn adapter(base_url: &str) -> WeChatApi {
    WeChatApi::new(config(base_url)).unwrap()
}

fn calls(fake: &Fake) -> Vec<(String, String)> {
    fake.phone_calls.lock().unwrap().clone()
}

#[tokio::test]
async fn login_returns_the_openid_and_never_the_session_key() {
    let (_, base) = start().await;
    let api = adapter(&base);

    let session = api.login("good").await.unwrap();
    assert_eq!(session.openid, "o-good");
    assert_eq!(session.unionid.as_deref(), Some("u-good"));
    assert!(!format!("{session:?}").contains(SESSION_KEY));

    let session = api.login("no-union").await.unwrap();
    assert_eq!((session.openid.as_str(), session.unionid), ("o-2", None));

    // Neither the adapter's nor its config's Debug shows the secret.
    assert!(!format!("{api:?}").contains(SECRET));
    assert!(!format!("{:?}", config(&base)).contains(SECRET));
}

#[tokio::test]
async fn login_errcodes_map_by_what_the_caller_can_do() {
    let (_, base) = start().await;
    let api = adapter(&base);
    for (code, want) in [
        ("err:40029", WeChatError::InvalidCode),
        ("err:40163", WeChatError::InvalidCode),
        ("err:1400001", WeChatError::InvalidCode),
        ("err:45011", WeChatError::RateLimited),
        ("err:40226", WeChatError::HighRiskUser),
        (
            "err:40125",
            WeChatError::Other {
                code: 40125,
                message: "fake error 40125".into(),
            },
        ),
    ] {
        assert_eq!(api.login(code).await, Err(want), "{code}");
    }
    for code in ["err:-1", "http500", "garbage", "no-openid"] {
        let got = api.login(code).await;
        assert!(
            matches!(got, Err(WeChatError::Unavailable(_))),
            "{code}: {got:?}"
        );
        // The unreadable body held the session key: it must not be quoted back.
        assert!(!format!("{got:?}").contains(SESSION_KEY), "{code}");
    }
    // Codes that cannot be WeChat codes are refused without a call.
    assert_eq!(api.login("").await, Err(WeChatError::InvalidCode));
    assert_eq!(
        api.login(&"x".repeat(600)).await,
        Err(WeChatError::InvalidCode)
    );
}

#[tokio::test]
async fn wrong_credentials_surface_as_other() {
    let (_, base) = start().await;
    let mut c = config(&base);
    c.app_secret = "wrong".into();
    let api = WeChatApi::new(c).unwrap();
    assert!(matches!(
        api.login("good").await,
        Err(WeChatError::Other { code: 40013, .. })
    ));
}

#[tokio::test]
async fn transport_failures_and_timeouts_are_unavailable_without_secrets() {
    let (_, base) = start().await;
    let api = WeChatApi::with_timeout(config(&base), Duration::from_millis(300)).unwrap();
    let started = std::time::Instant::now();
    let got = api.login("slow").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "timeout not applied"
    );
    match got {
        Err(WeChatError::Unavailable(m)) => {
            assert!(m.contains("timeout"), "{m}");
            assert!(!m.contains(SECRET), "{m}");
        }
        other => panic!("{other:?}"),
    }

    // Nothing listens on this port any more.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let api = adapter(&closed);
    for got in [
        api.login("good").await.map(|_| ()),
        api.phone_number("good").await.map(|_| ()),
    ] {
        match got {
            Err(WeChatError::Unavailable(m)) => assert!(!m.contains(SECRET), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn phone_number_is_verified_for_our_app() {
    let (fake, base) = start().await;
    let api = adapter(&base);
    assert_eq!(
        api.phone_number("good").await,
        Ok(VerifiedPhone {
            country_code: "86".into(),
            number: PHONE.into()
        })
    );
    // A numeric countryCode is read too.
    assert_eq!(
        api.phone_number("hk").await,
        Ok(VerifiedPhone {
            country_code: "852".into(),
            number: "91234567".into()
        })
    );
    assert_eq!(
        api.phone_number("other-app").await,
        Err(WeChatError::WrongApp)
    );
    assert_eq!(
        api.phone_number("no-watermark").await,
        Err(WeChatError::WrongApp)
    );
    // The code travels in the JSON body.
    assert_eq!(calls(&fake)[0].1, "good");
}

#[tokio::test]
async fn phone_errcodes_map_by_what_the_caller_can_do() {
    let (_, base) = start().await;
    let api = adapter(&base);
    for (code, want) in [
        ("err:40029", WeChatError::InvalidCode),
        ("err:1400001", WeChatError::InvalidCode),
        ("err:45011", WeChatError::RateLimited),
        ("err:40226", WeChatError::HighRiskUser),
        (
            "err:40003",
            WeChatError::Other {
                code: 40003,
                message: "fake error 40003".into(),
            },
        ),
    ] {
        assert_eq!(api.phone_number(code).await, Err(want), "{code}");
    }
    for code in ["err:-1", "http503"] {
        let got = api.phone_number(code).await;
        assert!(
            matches!(got, Err(WeChatError::Unavailable(_))),
            "{code}: {got:?}"
        );
    }
}

#[tokio::test]
async fn the_access_token_is_fetched_once_and_reused() {
    let (fake, base) = start().await;
    let api = adapter(&base);
    api.phone_number("good").await.unwrap();
    api.phone_number("hk").await.unwrap();
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 1);
    let tokens: Vec<_> = calls(&fake).into_iter().map(|(t, _)| t).collect();
    assert_eq!(tokens, ["tok-1", "tok-1"]);
}

#[tokio::test]
async fn concurrent_exchanges_share_one_token_fetch() {
    let (fake, base) = start().await;
    let api = Arc::new(adapter(&base));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.phone_number("good").await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_token_near_expiry_is_renewed() {
    let (fake, base) = start().await;
    // One second of life is too short to use: every exchange fetches a fresh token.
    fake.expires_in.store(1, Ordering::SeqCst);
    let api = adapter(&base);
    api.phone_number("good").await.unwrap();
    api.phone_number("good").await.unwrap();
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once() {
    let (fake, base) = start().await;
    let api = adapter(&base);
    api.phone_number("good").await.unwrap();
    fake.revoked.lock().unwrap().insert("tok-1".into());

    assert_eq!(
        api.phone_number("good").await.map(|p| p.number),
        Ok(PHONE.to_owned())
    );
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 2);
    let tokens: Vec<_> = calls(&fake).into_iter().map(|(t, _)| t).collect();
    assert_eq!(tokens, ["tok-1", "tok-1", "tok-2"]);

    // The new token is cached in turn.
    api.phone_number("good").await.unwrap();
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_refused_twice_is_not_retried_forever() {
    let (fake, base) = start().await;
    let api = adapter(&base);
    // This code always answers 42001 (token expired).
    assert!(matches!(
        api.phone_number("expired-token").await,
        Err(WeChatError::Other { code: 42001, .. })
    ));
    assert_eq!(calls(&fake).len(), 2);
    assert_eq!(fake.token_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn token_endpoint_errors_are_reported_and_not_cached() {
    let (fake, base) = start().await;
    let api = adapter(&base);
    *fake.token_errcode.lock().unwrap() = Some(45011);
    assert_eq!(
        api.phone_number("good").await,
        Err(WeChatError::RateLimited)
    );
    *fake.token_errcode.lock().unwrap() = Some(40125);
    assert!(matches!(
        api.phone_number("good").await,
        Err(WeChatError::Other { code: 40125, .. })
    ));
    assert!(calls(&fake).is_empty(), "no exchange without a token");
    *fake.token_errcode.lock().unwrap() = None;
    assert!(api.phone_number("good").await.is_ok());
}

/// Log output captured into a buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_hold_secrets_session_keys_tokens_or_phones() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded, so a thread-local subscriber sees every event —
    // once callsite interest is recomputed: another test thread may have cached a callsite as
    // uninteresting (no subscriber) while this one was being installed, hiding its events.
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let (fake, base) = start().await;
    let api = adapter(&base);
    let _ = api.login("good").await;
    let _ = api.login("err:40029").await;
    let _ = api.login("garbage").await;
    let _ = api.phone_number("good").await;
    let _ = api.phone_number("other-app").await;
    fake.revoked.lock().unwrap().insert("tok-1".into());
    let _ = api.phone_number("good").await;
    let _ = api.phone_number("err:40029").await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let _ = adapter(&closed).login("good").await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("40029"), "errors are logged: {logs}");
    assert!(logs.contains("another app"), "wrong app is logged: {logs}");
    for secret in [SECRET, SESSION_KEY, PHONE, "tok-1", "tok-2"] {
        assert!(!logs.contains(secret), "{secret} in logs:\n{logs}");
    }
}
