//! TaskOn reward webhooks (`taskon`, seed 003): a flat reward object, no envelope.
//!
//! The shape depends on `reward_type`: `Token` rewards carry the token's contract, symbol and
//! network; `GTCPoints` rewards carry the point system's name. Every payload carries the user
//! fields `user_id`, `evm_address`, `email` and a unix `timestamp`. `reward_amount` is a
//! *string* (`"0.1"`) and stays one.
//!
//! **Only `user_id` and `timestamp` are authenticated.** TaskOn's `X-Signature` covers the JSON
//! `{"timestamp":…,"user_id":…}` and nothing else: the task, the reward type, the amount, the
//! token and the email can all be altered in flight without breaking the signature. Treat
//! them as claims to check against your own records ([`SIGNED_FIELDS`] lists what is covered).
//!
//! ```
//! use hookrelay::event::taskon::TaskOnEvent;
//!
//! let body = br#"{"task_id":111111,"reward_type":"Token","reward_amount":"0.1",
//!   "token_symbol":"USDT","user_id":11111,"evm_address":["0xaaa"],"email":"u@example.com",
//!   "timestamp":1758251308}"#;
//! let TaskOnEvent::Token(reward) = TaskOnEvent::from_slice(body)? else { panic!() };
//! assert_eq!(reward.reward_amount.as_str(), "0.1");
//! assert_eq!(reward.user_id.0, 11111);
//! # Ok::<(), hookrelay::event::EventError>(())
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::from_slice_path;
use super::wire::{data_struct, wire_enum};
use super::{DecimalString, EventClock, EventError};
use crate::json::{self, JsonError};

/// The payload fields the signature covers; everything else is unauthenticated.
pub const SIGNED_FIELDS: &[&str] = &["timestamp", "user_id"];

/// A TaskOn task id (a number on the wire, e.g. `111111`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TaskId(pub u64);

/// A TaskOn user id (a number on the wire, e.g. `11111`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UserId(pub u64);

/// When the reward was distributed, in unix seconds (e.g. `1758251308`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// The current time from `clock`, in whole seconds.
    pub fn now(clock: &dyn EventClock) -> Self {
        let secs = match clock.now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        UnixTime(secs)
    }
}

wire_enum!(
    /// The kind of reward.
    RewardType {
        /// `Token`: a cryptocurrency or token reward.
        Token => "Token",
        /// `GTCPoints`: a points reward.
        GtcPoints => "GTCPoints",
    }
);

impl Default for RewardType {
    fn default() -> Self {
        RewardType::Other(String::new())
    }
}

data_struct!(
    /// A token reward (`reward_type: "Token"`).
    pub struct TokenReward {
        /// The completed task.
        req task_id: TaskId = "task_id",
        /// Always `Token` for this type.
        req reward_type: RewardType = "reward_type",
        /// Tokens distributed, as a decimal string.
        req reward_amount: DecimalString = "reward_amount",
        /// The token's contract address.
        opt token_contract: String = "token_contract",
        /// The token's symbol, e.g. `USDT`.
        opt token_symbol: String = "token_symbol",
        /// The chain, e.g. `bsc`.
        opt token_network: String = "token_network",
        /// The rewarded user (signed).
        req user_id: UserId = "user_id",
        /// The user's EVM addresses.
        opt evm_address: Vec<String> = "evm_address",
        /// The user's email.
        opt email: String = "email",
        /// Distribution time (signed).
        req timestamp: UnixTime = "timestamp",
    }
);

data_struct!(
    /// A points reward (`reward_type: "GTCPoints"`).
    pub struct PointsReward {
        /// The completed task.
        req task_id: TaskId = "task_id",
        /// Always `GTCPoints` for this type.
        req reward_type: RewardType = "reward_type",
        /// Points distributed, as a decimal string.
        req reward_amount: DecimalString = "reward_amount",
        /// The point system's name.
        opt point_name: String = "point_name",
        /// The rewarded user (signed).
        req user_id: UserId = "user_id",
        /// The user's EVM addresses.
        opt evm_address: Vec<String> = "evm_address",
        /// The user's email.
        opt email: String = "email",
        /// Distribution time (signed).
        req timestamp: UnixTime = "timestamp",
    }
);

impl TokenReward {
    /// A token reward with `reward_type` set to `Token`; fill in the token and user details
    /// with struct update syntax or the public fields.
    pub fn new(
        task_id: TaskId,
        reward_amount: DecimalString,
        user_id: UserId,
        timestamp: UnixTime,
    ) -> Self {
        TokenReward {
            task_id,
            reward_type: RewardType::Token,
            reward_amount,
            user_id,
            timestamp,
            ..TokenReward::default()
        }
    }
}

impl PointsReward {
    /// A points reward with `reward_type` set to `GTCPoints`.
    pub fn new(
        task_id: TaskId,
        reward_amount: DecimalString,
        user_id: UserId,
        timestamp: UnixTime,
    ) -> Self {
        PointsReward {
            task_id,
            reward_type: RewardType::GtcPoints,
            reward_amount,
            user_id,
            timestamp,
            ..PointsReward::default()
        }
    }
}

impl From<TokenReward> for TaskOnEvent {
    fn from(r: TokenReward) -> Self {
        TaskOnEvent::Token(r)
    }
}

impl From<PointsReward> for TaskOnEvent {
    fn from(r: PointsReward) -> Self {
        TaskOnEvent::Points(r)
    }
}

/// A TaskOn reward notification, by `reward_type`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TaskOnEvent {
    /// A token reward.
    Token(TokenReward),
    /// A points reward.
    Points(PointsReward),
    /// A reward type this version does not know, kept as sent.
    Unknown {
        /// The `reward_type` value.
        reward_type: RewardType,
        /// The whole payload.
        data: Value,
    },
}

#[derive(Deserialize)]
struct Peek {
    reward_type: RewardType,
}

impl TaskOnEvent {
    /// Parses a reward payload: `reward_type` first, then the matching type.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EventError> {
        let peek: Peek = from_slice_path(bytes)?;
        Ok(match peek.reward_type {
            RewardType::Token => TaskOnEvent::Token(from_slice_path(bytes)?),
            RewardType::GtcPoints => TaskOnEvent::Points(from_slice_path(bytes)?),
            reward_type => TaskOnEvent::Unknown {
                reward_type,
                data: from_slice_path(bytes)?,
            },
        })
    }

    /// The body to send, as a fixed point of `JSON.stringify(JSON.parse(body))`.
    pub fn to_js_bytes(&self) -> Result<Vec<u8>, JsonError> {
        json::to_js_vec(self)
    }

    /// The rewarded user, if known.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            TaskOnEvent::Token(r) => Some(r.user_id),
            TaskOnEvent::Points(r) => Some(r.user_id),
            TaskOnEvent::Unknown { data, .. } => data.get("user_id")?.as_u64().map(UserId),
        }
    }

    /// The `(task_id, timestamp)` pair TaskOn recommends deduplicating retries on.
    pub fn idempotency_key(&self) -> Option<(TaskId, UnixTime)> {
        match self {
            TaskOnEvent::Token(r) => Some((r.task_id, r.timestamp)),
            TaskOnEvent::Points(r) => Some((r.task_id, r.timestamp)),
            TaskOnEvent::Unknown { data, .. } => Some((
                TaskId(data.get("task_id")?.as_u64()?),
                UnixTime(data.get("timestamp")?.as_i64()?),
            )),
        }
    }
}

impl Serialize for TaskOnEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TaskOnEvent::Token(r) => r.serialize(serializer),
            TaskOnEvent::Points(r) => r.serialize(serializer),
            TaskOnEvent::Unknown { data, .. } => data.serialize(serializer),
        }
    }
}

data_struct!(
    /// The object the signature is computed over, as the document shows it. (The bytes
    /// actually signed are Go's sorted `{"timestamp":…,"user_id":…}`; see the signing scheme.)
    pub struct SignedFields {
        /// The user.
        req user_id: UserId = "user_id",
        /// The time.
        req timestamp: UnixTime = "timestamp",
    }
);

/// The receiver's reply: `{"result":true,"error":null}` or `{"result":false,"error":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardAck {
    /// Whether the notification was processed.
    pub result: bool,
    /// `None` on success, else what went wrong.
    pub error: Option<String>,
}

impl RewardAck {
    /// `{"result":true,"error":null}`.
    pub fn ok() -> Self {
        RewardAck {
            result: true,
            error: None,
        }
    }

    /// `{"result":false,"error":message}`.
    pub fn failed(message: impl Into<String>) -> Self {
        RewardAck {
            result: false,
            error: Some(message.into()),
        }
    }
}
