//! # hookrelay
//!
//! Send and receive webhooks: sign and verify them under the schemes real systems use,
//! get typed events out, and (in later releases) deliver them with retries.
//!
//! ## Layout
//!
//! This is the map of the crate; each concept lives in one file.
//!
//! | module | what it holds |
//! |---|---|
//! | [`event`] | typed events and envelopes for the four source systems; ids, timestamps, exact decimals |
//! | [`json`] | a JSON writer whose output survives `JSON.stringify(JSON.parse(x))` (or Python's `json.dumps`) |
//!
//! ## Features
//!
//! | feature | enables |
//! |---|---|
//! | `ed25519` | Standard Webhooks `v1a` (Ed25519) signing and verification |
//! | `cli` | the `hookrelay` command-line tool |
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod event;
pub mod json;
