//! Adapters of the [`puhui_ports::WeChatIdentity`] port: the real WeChat server API
//! ([`WeChatApi`]) and a deterministic local stand-in ([`DevWeChat`]).

mod api;
mod dev;

pub use api::{DEFAULT_BASE_URL, WeChatApi, WeChatConfig};
pub use dev::DevWeChat;

use puhui_ports::WeChatError;

/// Maps a WeChat `errcode`/`errmsg` (non-zero) to what the caller can do about it.
pub(crate) fn map_errcode(code: i64, message: &str) -> WeChatError {
    match code {
        // 40029 invalid code, 40163 code already used, 41008 code missing, 42003 code expired,
        // 1400001 phone code unusable: in every case the client must get a fresh code.
        40029 | 40163 | 41008 | 42003 | 1_400_001 => WeChatError::InvalidCode,
        45011 => WeChatError::RateLimited,
        40226 => WeChatError::HighRiskUser,
        // "System busy": documented as transient.
        -1 => WeChatError::Unavailable(format!("WeChat busy ({message})")),
        _ => WeChatError::Other {
            code,
            message: message.to_owned(),
        },
    }
}
