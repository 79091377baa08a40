//! `listen` prints why it refused a request on stderr: the receiver's `tracing` events at
//! `INFO` and above, one line each, for example
//! `hookrelay: 401 webhook rejected (tasklink): no signature matches`.
//!
//! A fixed one-line format needs none of `tracing-subscriber`'s machinery, so this small
//! subscriber does the printing; stdout stays reserved for accepted events.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::metadata::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Installs the stderr printer for the whole process.
pub(crate) fn install() {
    // Fails only if a subscriber is already set, which then keeps printing instead.
    let _ = tracing::subscriber::set_global_default(Stderr);
}

struct Stderr;

impl Subscriber for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("hookrelay") && *metadata.level() <= Level::INFO
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        eprintln!("hookrelay: {}", fields.line(*event.metadata().level()));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// The fields of one receiver event.
#[derive(Default)]
struct Fields {
    message: String,
    status: String,
    profile: String,
    detail: String,
}

impl Fields {
    /// `[level ]<status> <message> (<profile>): <reason or error>`, omitting what is absent.
    fn line(&self, level: Level) -> String {
        let mut line = String::new();
        if level != Level::INFO {
            let _ = write!(line, "{} ", level.as_str().to_lowercase());
        }
        for part in [&self.status, &self.message] {
            if !part.is_empty() {
                let _ = write!(line, "{part} ");
            }
        }
        line.pop();
        if !self.profile.is_empty() {
            let _ = write!(line, " ({})", self.profile);
        }
        if !self.detail.is_empty() {
            let _ = write!(line, ": {}", self.detail);
        }
        line
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let slot = match field.name() {
            "message" => &mut self.message,
            "status" => &mut self.status,
            "profile" => &mut self.profile,
            "reason" | "error" => &mut self.detail,
            _ => return,
        };
        *slot = format!("{value:?}");
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}
