//! The task webhook system (`task-hub`, seed 004): `task.*` and `system.*`.
//!
//! The document shows only each event's `data` object (in a table) and names the event type in
//! the `X-Event-Type` header. hookrelay chooses the same envelope as the Proposal Generator,
//! `{id, type, timestamp, data}` ([`Envelope`](super::Envelope)), so a receiver finds the type
//! and id in the body as well as in the headers. Fields are camelCase. The document's examples
//! show times as `"..."`, so time fields are [`LenientTime`] (text, parsed on demand).
//!
//! ```
//! use hookrelay::event::task_hub::{TaskCompleted, TaskHubEvent};
//! use hookrelay::event::{Envelope, EventData, EventType};
//!
//! let event = TaskHubEvent::from_data(&EventType::from("task.completed"),
//!     r#"{"taskId":"123","completedAt":"2025-01-01T00:00:00Z"}"#)?;
//! let TaskHubEvent::TaskCompleted(TaskCompleted { task_id, completed_at, .. }) = &event else { panic!() };
//! assert_eq!(task_id.as_str(), "123");
//! assert_eq!(completed_at.as_ref().unwrap().parse().unwrap().unix_seconds(), 1_735_689_600);
//! # Ok::<(), hookrelay::event::EventError>(())
//! ```

use super::registration::{EndpointUrl, RegistrationSecret};
use super::wire::{data_struct, event_enum, string_newtype, wire_enum};
use super::{EventType, LenientTime};

string_newtype!(
    /// A task id, e.g. `123`.
    TaskId
);
string_newtype!(
    /// A system error code, e.g. `DB_ERROR`.
    ErrorCode
);

wire_enum!(
    /// How severe a system error is.
    Severity {
        /// `low`
        Low => "low",
        /// `medium`
        Medium => "medium",
        /// `high`
        High => "high",
        /// `critical`
        Critical => "critical",
    }
);

data_struct!(
    /// `task.created`: a task was created.
    pub struct TaskCreated {
        /// The task.
        req task_id: TaskId = "taskId",
        /// Its title.
        opt title: String = "title",
    }
);

data_struct!(
    /// `task.updated`: a task was modified.
    pub struct TaskUpdated {
        /// The task.
        req task_id: TaskId = "taskId",
        /// Names of the changed fields, e.g. `["status"]`.
        opt changes: Vec<String> = "changes",
    }
);

data_struct!(
    /// `task.completed`: a task was marked complete.
    pub struct TaskCompleted {
        /// The task.
        req task_id: TaskId = "taskId",
        /// When it was completed.
        opt completed_at: LenientTime = "completedAt",
    }
);

data_struct!(
    /// `task.deleted`: a task was deleted.
    pub struct TaskDeleted {
        /// The task.
        req task_id: TaskId = "taskId",
    }
);

data_struct!(
    /// `system.maintenance`: scheduled maintenance.
    pub struct SystemMaintenance {
        /// When it starts.
        opt start_time: LenientTime = "startTime",
        /// How long it lasts, in seconds.
        opt duration: u64 = "duration",
    }
);

data_struct!(
    /// `system.error`: a system-level error.
    pub struct SystemError {
        /// Error code, e.g. `DB_ERROR`.
        opt code: ErrorCode = "code",
        /// Severity.
        opt severity: Severity = "severity",
    }
);

event_enum!(
    /// Every task-hub event, by its type.
    TaskHubEvent {
        /// `task.created`
        TaskCreated(TaskCreated) => "task.created",
        /// `task.updated`
        TaskUpdated(TaskUpdated) => "task.updated",
        /// `task.completed`
        TaskCompleted(TaskCompleted) => "task.completed",
        /// `task.deleted`
        TaskDeleted(TaskDeleted) => "task.deleted",
        /// `system.maintenance`
        SystemMaintenance(SystemMaintenance) => "system.maintenance",
        /// `system.error`
        SystemError(SystemError) => "system.error",
    }
);

data_struct!(
    /// `POST /api/webhooks` request body.
    pub struct Registration {
        /// A display name.
        opt name: String = "name",
        /// The receiver's URL.
        req url: EndpointUrl = "url",
        /// Event types to deliver.
        req events: Vec<EventType> = "events",
        /// The signing secret.
        opt secret: RegistrationSecret = "secret",
        /// Register a test-mode webhook.
        opt test_mode: bool = "testMode",
    }
);

data_struct!(
    /// The custom payload of `POST /api/webhooks/{id}/test`, as in the document's example;
    /// any other fields are kept in `extra`.
    pub struct TestPayload {
        /// A task id.
        opt task_id: TaskId = "taskId",
        /// A status.
        opt status: String = "status",
    }
);
