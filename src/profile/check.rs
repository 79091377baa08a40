//! What a profile can put on the wire: an outgoing event's id and type are checked when it is
//! published, not when an attempt finds it cannot sign or send them.

use std::fmt;

use super::Profile;
use crate::event::OutgoingEvent;
use crate::scheme::MAX_ID_LEN;

/// Which part of an outgoing event was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventField {
    /// The event id.
    Id,
    /// The event type.
    Type,
}

impl EventField {
    /// `"id"` or `"type"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Type => "type",
        }
    }
}

/// Why an event's id or type cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldProblem {
    /// It is empty.
    Empty,
    /// It contains a carriage return or a line feed (header injection).
    LineBreak,
    /// It contains another control character (NUL, tab, DEL, …).
    ControlCharacter,
    /// It is longer than a header id may be (256 bytes).
    TooLong,
    /// It goes into a header and has characters other than visible ASCII (ids) or ASCII
    /// (types).
    NotAscii,
    /// It goes into a header and begins or ends with a space, which receivers strip.
    SurroundingSpace,
    /// It is a Standard Webhooks id containing `.`, the separator of the signed
    /// `{id}.{timestamp}.{body}`: moving characters across it would forge another message.
    Dot,
}

impl FieldProblem {
    fn describe(self) -> &'static str {
        match self {
            Self::Empty => "is empty",
            Self::LineBreak => "contains a line break (CR or LF)",
            Self::ControlCharacter => "contains a control character",
            Self::TooLong => "is longer than 256 bytes",
            Self::NotAscii => {
                "goes into a header and has characters it cannot hold (ids: visible ascii; types: ascii)"
            }
            Self::SurroundingSpace => "goes into a header and begins or ends with a space",
            Self::Dot => "contains `.`, the separator of the signed `{id}.{timestamp}.{body}`",
        }
    }
}

/// An event's id or type that a profile cannot put on the wire: which field, why, and which
/// profile refused it (`None`: no profile can). The message never repeats the value itself.
///
/// | rule | applies to |
/// |---|---|
/// | the type is not empty | every profile |
/// | no control characters (CR, LF, tab, NUL, DEL, …) in the id or the type | every profile |
/// | the id is 1–256 visible ASCII characters (it is a header and is signed) | `tasklink` (`X-Webhook-ID`), `standard-webhooks` (`webhook-id`) |
/// | the id has no `.` (the signed string is `{id}.{timestamp}.{body}`) | `standard-webhooks` |
/// | the type is ASCII without leading or trailing spaces (it is a header value) | `tasklink` (`X-Webhook-Event`), `task-hub` (`X-Event-Type`), `github` (`X-GitHub-Event`) |
///
/// ```
/// use hookrelay::event::OutgoingEvent;
/// use hookrelay::profile::{EventField, FieldProblem, Profile};
///
/// let event = OutgoingEvent::new("task.created", serde_json::json!({}))
///     .with_id("msg.1".into());
/// let refused = Profile::StandardWebhooks.check_event(&event).unwrap_err();
/// assert_eq!(refused.field(), EventField::Id);
/// assert_eq!(refused.problem(), FieldProblem::Dot);
/// assert_eq!(refused.profile(), Some(Profile::StandardWebhooks));
/// // task-hub puts the id only in the body: fine there.
/// assert!(Profile::TaskHub.check_event(&event).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnsendableEvent {
    profile: Option<Profile>,
    field: EventField,
    problem: FieldProblem,
}

impl UnsendableEvent {
    /// The profile that cannot carry the field, or `None` if no profile can.
    pub fn profile(&self) -> Option<Profile> {
        self.profile
    }

    /// The refused field.
    pub fn field(&self) -> EventField {
        self.field
    }

    /// Why it was refused.
    pub fn problem(&self) -> FieldProblem {
        self.problem
    }
}

impl fmt::Display for UnsendableEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the event {} {}",
            self.field.as_str(),
            self.problem.describe()
        )?;
        if let Some(profile) = self.profile {
            write!(f, " (the {profile} profile cannot send it)")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnsendableEvent {}

impl Profile {
    /// Whether this profile can put `event`'s id and type on the wire (the rules are listed at
    /// [`UnsendableEvent`]): [`Sender::publish`](crate::send::Sender::publish)
    /// checks every endpoint an event fans out to this way.
    pub fn check_event(self, event: &OutgoingEvent) -> Result<(), UnsendableEvent> {
        check_any(event)?;
        self.check_own(event)
    }

    /// This profile's own rules, without those of every profile ([`check_any`]).
    pub(crate) fn check_own(self, event: &OutgoingEvent) -> Result<(), UnsendableEvent> {
        let refuse = |field, problem| {
            Err(UnsendableEvent {
                profile: Some(self),
                field,
                problem,
            })
        };
        if matches!(self, Self::TaskLink | Self::StandardWebhooks) {
            let id = event.id().as_str();
            if id.is_empty() {
                return refuse(EventField::Id, FieldProblem::Empty);
            }
            if id.len() > MAX_ID_LEN {
                return refuse(EventField::Id, FieldProblem::TooLong);
            }
            if !id.bytes().all(|b| b.is_ascii_graphic()) {
                return refuse(EventField::Id, FieldProblem::NotAscii);
            }
            if self == Self::StandardWebhooks && id.contains('.') {
                return refuse(EventField::Id, FieldProblem::Dot);
            }
        }
        if self.event_type_header().is_some() {
            let kind = event.event_type().as_str();
            if !kind.is_ascii() {
                return refuse(EventField::Type, FieldProblem::NotAscii);
            }
            if kind.starts_with(' ') || kind.ends_with(' ') {
                return refuse(EventField::Type, FieldProblem::SurroundingSpace);
            }
        }
        Ok(())
    }
}

/// The rules of every profile: a non-empty type, no control characters in the id or type.
pub(crate) fn check_any(event: &OutgoingEvent) -> Result<(), UnsendableEvent> {
    let refuse = |field, problem| {
        Err(UnsendableEvent {
            profile: None,
            field,
            problem,
        })
    };
    let kind = event.event_type().as_str();
    if kind.is_empty() {
        return refuse(EventField::Type, FieldProblem::Empty);
    }
    for (field, text) in [
        (EventField::Id, event.id().as_str()),
        (EventField::Type, kind),
    ] {
        if text.contains(['\r', '\n']) {
            return refuse(field, FieldProblem::LineBreak);
        }
        if text.chars().any(char::is_control) {
            return refuse(field, FieldProblem::ControlCharacter);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: &str) -> OutgoingEvent {
        OutgoingEvent::new(kind, serde_json::json!({})).with_id(id.into())
    }

    fn problem(
        profile: Profile,
        id: &str,
        kind: &str,
    ) -> Option<(Option<Profile>, EventField, FieldProblem)> {
        profile
            .check_event(&event(id, kind))
            .err()
            .map(|e| (e.profile(), e.field(), e.problem()))
    }

    #[test]
    fn rules_of_every_profile() {
        for profile in Profile::ALL {
            assert_eq!(problem(profile, "evt_1", "task.created"), None, "{profile}");
            assert_eq!(
                problem(profile, "evt_1", ""),
                Some((None, EventField::Type, FieldProblem::Empty))
            );
            assert_eq!(
                problem(profile, "evt_1\r\nX-Admin: 1", "a"),
                Some((None, EventField::Id, FieldProblem::LineBreak))
            );
            assert_eq!(
                problem(profile, "evt_1", "a\nb"),
                Some((None, EventField::Type, FieldProblem::LineBreak))
            );
            assert_eq!(
                problem(profile, "evt_1", "a\u{7f}"),
                Some((None, EventField::Type, FieldProblem::ControlCharacter))
            );
            assert_eq!(
                problem(profile, "evt\u{0}1", "a"),
                Some((None, EventField::Id, FieldProblem::ControlCharacter))
            );
        }
    }

    #[test]
    fn rules_of_header_ids_and_types() {
        let sw = Some(Profile::StandardWebhooks);
        assert_eq!(
            problem(Profile::StandardWebhooks, "msg.1", "a"),
            Some((sw, EventField::Id, FieldProblem::Dot))
        );
        assert_eq!(problem(Profile::TaskLink, "msg.1", "a"), None);
        for profile in [Profile::TaskLink, Profile::StandardWebhooks] {
            assert_eq!(
                problem(profile, "", "a").map(|p| p.2),
                Some(FieldProblem::Empty)
            );
            assert_eq!(
                problem(profile, "evt 1", "a").map(|p| p.2),
                Some(FieldProblem::NotAscii)
            );
            assert_eq!(
                problem(profile, &"x".repeat(257), "a").map(|p| p.2),
                Some(FieldProblem::TooLong)
            );
            assert_eq!(problem(profile, &"x".repeat(256), "a"), None);
        }
        // Ids that only go into the body may be anything printable.
        for profile in [Profile::TaskHub, Profile::GitHub, Profile::Stripe] {
            assert_eq!(problem(profile, "évt 1.2", "a"), None, "{profile}");
        }
        for profile in [Profile::TaskLink, Profile::TaskHub, Profile::GitHub] {
            assert_eq!(
                problem(profile, "evt_1", "tâche").map(|p| p.2),
                Some(FieldProblem::NotAscii),
                "{profile}"
            );
            assert_eq!(
                problem(profile, "evt_1", " push").map(|p| p.2),
                Some(FieldProblem::SurroundingSpace),
                "{profile}"
            );
            assert_eq!(problem(profile, "evt_1", "task completed"), None);
        }
        assert_eq!(problem(Profile::ProposalGenerator, "evt_1", "tâche "), None);
    }

    #[test]
    fn the_message_names_field_and_reason_not_the_value() {
        let err = Profile::TaskHub
            .check_event(&event("evt_1", "a\r\nX-Injected: 1"))
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(text, "the event type contains a line break (CR or LF)");
        assert!(!text.contains("Injected"));
        let err = Profile::StandardWebhooks
            .check_event(&event("a.b", "t"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the event id contains `.`, the separator of the signed `{id}.{timestamp}.{body}` \
             (the standard-webhooks profile cannot send it)"
        );
    }
}
