//! The signed JSON POST both HTTP notifiers send, and how its outcome maps to [`NotifyError`].

use puhui_ports::NotifyError;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use super::IDEMPOTENCY_KEY_HEADER;
use crate::{SIGNATURE_HEADER, describe, sign};

/// POSTs `body` (JSON) to `url`, signed with `secret` and carrying the idempotency `key`.
/// `recipient` is the masked recipient, for logs only.
pub(crate) async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    secret: &[u8],
    body: Vec<u8>,
    key: &str,
    recipient: &str,
) -> Result<(), NotifyError> {
    let key_header = HeaderValue::from_str(key).map_err(|_| {
        NotifyError::Rejected("notification key is not a valid header value".into())
    })?;
    let signature = sign(secret, &body);
    let sent = http
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(IDEMPOTENCY_KEY_HEADER, key_header)
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            let error = describe(e);
            tracing::warn!(key, recipient, %error, "notification not delivered");
            return Err(NotifyError::Unavailable(error));
        }
    };
    let status = response.status();
    match classify(status) {
        Ok(()) => {
            tracing::debug!(
                key,
                recipient,
                status = status.as_u16(),
                "notification delivered"
            );
            Ok(())
        }
        Err(e) => {
            // The response body is not logged: a gateway may echo the phone number back.
            tracing::warn!(
                key,
                recipient,
                status = status.as_u16(),
                "notification refused"
            );
            Err(e)
        }
    }
}

/// 2xx delivered; 408, 429 and 5xx are worth retrying; any other answer (4xx, an unexpected
/// redirect) will not change on retry.
fn classify(status: StatusCode) -> Result<(), NotifyError> {
    let code = status.as_u16();
    if status.is_success() {
        Ok(())
    } else if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        Err(NotifyError::Unavailable(format!("HTTP {code}")))
    } else {
        Err(NotifyError::Rejected(format!("HTTP {code}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_by_whether_retrying_helps() {
        let kind = |code: u16| match classify(StatusCode::from_u16(code).unwrap()) {
            Ok(()) => "ok",
            Err(NotifyError::Rejected(_)) => "rejected",
            Err(NotifyError::Unavailable(_)) => "unavailable",
        };
        for (code, want) in [
            (200, "ok"),
            (202, "ok"),
            (204, "ok"),
            (301, "rejected"),
            (400, "rejected"),
            (401, "rejected"),
            (404, "rejected"),
            (422, "rejected"),
            (408, "unavailable"),
            (429, "unavailable"),
            (500, "unavailable"),
            (503, "unavailable"),
        ] {
            assert_eq!(kind(code), want, "{code}");
        }
    }
}
