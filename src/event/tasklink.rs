//! TaskLink SA (`tasklink`, seed 002): `job.*`, `payment.*`, `application.*`,
//! `review.created`, `dispute.*`.
//!
//! Wire shape: [`TaskLinkEnvelope`](super::TaskLinkEnvelope) (`{event, id: "evt_…", timestamp, data}` plus an
//! unauthenticated body `signature`), camelCase fields, money as JSON numbers (`500.00`),
//! millisecond timestamps. The same nested objects (job, payment, …) appear with different
//! subsets of fields in different events, so every field but the object's `id` is optional.
//!
//! ```
//! use hookrelay::event::tasklink::{Job, JobCreated, JobStatus, TaskLinkEvent};
//! use hookrelay::event::{EventFactory, FixedEventClock, SequentialIds};
//!
//! let factory = EventFactory::new()
//!     .with_ids(SequentialIds::new("evt_"))
//!     .with_clock(FixedEventClock::at_unix(1_759_822_623, 0));
//! let event = TaskLinkEvent::from(JobCreated {
//!     job: Job {
//!         id: "job_1".into(),
//!         budget: Some("500.00".parse()?),
//!         status: Some(JobStatus::Open),
//!         ..Job::default()
//!     },
//!     ..JobCreated::default()
//! });
//! let env = factory.tasklink(event);
//! assert_eq!(
//!     String::from_utf8(env.to_js_bytes()?)?,
//!     r#"{"event":"job.created","id":"evt_1","timestamp":"2025-10-07T07:37:03.000Z","data":{"job":{"id":"job_1","budget":500,"status":"OPEN"}}}"#
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde_json::Value;

use super::wire::{data_struct, event_enum, string_newtype, wire_enum};
use super::{Decimal, EventTime};

string_newtype!(
    /// A job id, e.g. `job_123456`.
    JobId
);
string_newtype!(
    /// A user id, e.g. `user_123`.
    UserId
);
string_newtype!(
    /// A payment id, e.g. `pay_123456`.
    PaymentId
);
string_newtype!(
    /// A job application id, e.g. `app_123456`.
    ApplicationId
);
string_newtype!(
    /// A review id, e.g. `rev_123456`.
    ReviewId
);
string_newtype!(
    /// A dispute id, e.g. `dsp_123456`.
    DisputeId
);
string_newtype!(
    /// An ISO 4217 currency code, e.g. `ZAR`.
    Currency
);

wire_enum!(
    /// A job's status.
    JobStatus {
        /// `OPEN`
        Open => "OPEN",
        /// `ASSIGNED`
        Assigned => "ASSIGNED",
        /// `COMPLETED`
        Completed => "COMPLETED",
    }
);

wire_enum!(
    /// How a job's budget is set.
    BudgetType {
        /// `fixed`
        Fixed => "fixed",
        /// `hourly`
        Hourly => "hourly",
    }
);

wire_enum!(
    /// A payment's status.
    PaymentStatus {
        /// `PENDING`
        Pending => "PENDING",
        /// `COMPLETED`
        Completed => "COMPLETED",
        /// `FAILED`
        Failed => "FAILED",
        /// `REFUNDED`
        Refunded => "REFUNDED",
    }
);

wire_enum!(
    /// A payment provider.
    PaymentMethod {
        /// `payfast`
        Payfast => "payfast",
    }
);

wire_enum!(
    /// A job application's status.
    ApplicationStatus {
        /// `PENDING`
        Pending => "PENDING",
        /// `ACCEPTED`
        Accepted => "ACCEPTED",
    }
);

wire_enum!(
    /// A dispute's status.
    DisputeStatus {
        /// `OPEN`
        Open => "OPEN",
        /// `RESOLVED`
        Resolved => "RESOLVED",
    }
);

wire_enum!(
    /// A dispute's priority.
    Priority {
        /// `LOW`
        Low => "LOW",
        /// `MEDIUM`
        Medium => "MEDIUM",
        /// `HIGH`
        High => "HIGH",
    }
);

wire_enum!(
    /// A dispute's category.
    DisputeCategory {
        /// `job_quality`
        JobQuality => "job_quality",
    }
);

data_struct!(
    /// A job, or the subset of its fields an event carries.
    pub struct Job {
        /// The job id.
        req id: JobId = "id",
        /// Title.
        opt title: String = "title",
        /// Description.
        opt description: String = "description",
        /// Category, e.g. `gardening`.
        opt category: String = "category",
        /// Location.
        opt location: String = "location",
        /// Budget amount (exact).
        opt budget: Decimal = "budget",
        /// `fixed`, ….
        opt budget_type: BudgetType = "budgetType",
        /// `OPEN`, `ASSIGNED`, `COMPLETED`, ….
        opt status: JobStatus = "status",
        /// The client who posted it.
        opt poster_id: UserId = "posterId",
        /// The assigned worker.
        opt worker_id: UserId = "workerId",
        /// Creation time.
        opt created_at: EventTime = "createdAt",
        /// Last update time.
        opt updated_at: EventTime = "updatedAt",
        /// Assignment time.
        opt assigned_at: EventTime = "assignedAt",
        /// Completion time.
        opt completed_at: EventTime = "completedAt",
    }
);

data_struct!(
    /// A platform user as embedded in events (worker, applicant).
    pub struct Person {
        /// The user id.
        req id: UserId = "id",
        /// First name.
        opt first_name: String = "firstName",
        /// Last name.
        opt last_name: String = "lastName",
        /// Average rating (e.g. `4.9`).
        opt rating: f64 = "rating",
        /// Skills.
        opt skills: Vec<String> = "skills",
    }
);

data_struct!(
    /// One changed field: its value before and after (any JSON value; read amounts exactly
    /// with [`Change::from_as`]/[`Change::to_as`], e.g. as [`Decimal`]).
    pub struct Change {
        /// The old value.
        opt from: Value = "from",
        /// The new value.
        opt to: Value = "to",
    }
);

impl Change {
    /// The old value as `T` (e.g. [`Decimal`]); `None` if absent or of another type.
    pub fn from_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        T::deserialize(self.from.as_ref()?).ok()
    }

    /// The new value as `T`; `None` if absent or of another type.
    pub fn to_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        T::deserialize(self.to.as_ref()?).ok()
    }
}

/// `job.updated`'s `changes` object: changed field name → [`Change`], in the sender's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes(pub Vec<(String, Change)>);

impl Changes {
    /// The change recorded for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&Change> {
        self.0
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, c)| c)
    }

    /// All changes in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Change)> {
        self.0.iter().map(|(name, c)| (name.as_str(), c))
    }
}

impl serde::Serialize for Changes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de> serde::Deserialize<'de> for Changes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Changes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of changes")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Changes, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Change>()? {
                    out.push((k, v));
                }
                Ok(Changes(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

data_struct!(
    /// `job.created`: a job was posted.
    pub struct JobCreated {
        /// The job.
        req job: Job = "job",
    }
);

data_struct!(
    /// `job.updated`: job details changed.
    pub struct JobUpdated {
        /// The job's changed fields.
        req job: Job = "job",
        /// What changed, by field name.
        opt changes: Changes = "changes",
    }
);

impl JobUpdated {
    /// The change recorded for `field`, if any.
    pub fn change(&self, field: &str) -> Option<&Change> {
        self.changes.as_ref()?.get(field)
    }
}

data_struct!(
    /// `job.assigned`: a worker was assigned.
    pub struct JobAssigned {
        /// The job.
        req job: Job = "job",
        /// The worker.
        opt worker: Person = "worker",
    }
);

data_struct!(
    /// The client's verdict on a completed job.
    pub struct Completion {
        /// Rating given.
        opt rating: f64 = "rating",
        /// Review text.
        opt review: String = "review",
        /// Whether escrowed payment was released.
        opt payment_released: bool = "paymentReleased",
    }
);

data_struct!(
    /// `job.completed`: a job was marked completed.
    pub struct JobCompleted {
        /// The job.
        req job: Job = "job",
        /// The completion details.
        opt completion: Completion = "completion",
    }
);

data_struct!(
    /// A payment, or the subset of its fields an event carries.
    pub struct Payment {
        /// The payment id.
        req id: PaymentId = "id",
        /// Amount (exact).
        opt amount: Decimal = "amount",
        /// Currency code.
        opt currency: Currency = "currency",
        /// Status.
        opt status: PaymentStatus = "status",
        /// Provider.
        opt payment_method: PaymentMethod = "paymentMethod",
        /// The job paid for.
        opt job_id: JobId = "jobId",
        /// The paying client.
        opt client_id: UserId = "clientId",
        /// The paid worker.
        opt worker_id: UserId = "workerId",
        /// Platform fee (exact).
        opt fee: Decimal = "fee",
        /// Amount after fee (exact).
        opt net_amount: Decimal = "netAmount",
        /// When it was paid.
        opt paid_at: EventTime = "paidAt",
        /// Provider transaction id.
        opt transaction_id: String = "transactionId",
        /// Why it failed.
        opt failure_reason: String = "failureReason",
        /// When it failed.
        opt failed_at: EventTime = "failedAt",
        /// When it was refunded.
        opt refunded_at: EventTime = "refundedAt",
        /// Why it was refunded.
        opt refund_reason: String = "refundReason",
    }
);

data_struct!(
    /// `payment.created`: a payment was initiated.
    pub struct PaymentCreated {
        /// The payment.
        req payment: Payment = "payment",
    }
);

data_struct!(
    /// `payment.completed`: a payment succeeded.
    pub struct PaymentCompleted {
        /// The payment.
        req payment: Payment = "payment",
        /// The job paid for.
        opt job: Job = "job",
    }
);

data_struct!(
    /// `payment.failed`: a payment failed or was rejected.
    pub struct PaymentFailed {
        /// The payment.
        req payment: Payment = "payment",
        /// The job.
        opt job: Job = "job",
    }
);

data_struct!(
    /// `payment.refunded`: a payment was refunded.
    pub struct PaymentRefunded {
        /// The refund.
        req payment: Payment = "payment",
        /// The payment being refunded.
        opt original_payment: Payment = "originalPayment",
    }
);

data_struct!(
    /// A job application.
    pub struct Application {
        /// The application id.
        req id: ApplicationId = "id",
        /// The job applied for.
        opt job_id: JobId = "jobId",
        /// The applicant.
        opt applicant_id: UserId = "applicantId",
        /// Cover message.
        opt message: String = "message",
        /// Proposed rate (exact).
        opt proposed_rate: Decimal = "proposedRate",
        /// Status.
        opt status: ApplicationStatus = "status",
        /// When it was accepted.
        opt accepted_at: EventTime = "acceptedAt",
    }
);

data_struct!(
    /// `application.submitted`: a worker applied for a job.
    pub struct ApplicationSubmitted {
        /// The application.
        req application: Application = "application",
        /// The job.
        opt job: Job = "job",
        /// The applicant.
        opt applicant: Person = "applicant",
    }
);

data_struct!(
    /// `application.accepted`: an application was accepted.
    pub struct ApplicationAccepted {
        /// The application.
        req application: Application = "application",
        /// The job.
        opt job: Job = "job",
        /// The worker now assigned.
        opt worker: Person = "worker",
    }
);

data_struct!(
    /// A review.
    pub struct Review {
        /// The review id.
        req id: ReviewId = "id",
        /// Rating given.
        opt rating: f64 = "rating",
        /// Text.
        opt comment: String = "comment",
        /// The job reviewed.
        opt job_id: JobId = "jobId",
        /// Who wrote it.
        opt reviewer_id: UserId = "reviewerId",
        /// Who it is about.
        opt reviewee_id: UserId = "revieweeId",
        /// Whether it is public.
        opt is_public: bool = "isPublic",
        /// When it was written.
        opt created_at: EventTime = "createdAt",
    }
);

data_struct!(
    /// `review.created`: a review was submitted.
    pub struct ReviewCreated {
        /// The review.
        req review: Review = "review",
        /// The job.
        opt job: Job = "job",
    }
);

data_struct!(
    /// A dispute.
    pub struct Dispute {
        /// The dispute id.
        req id: DisputeId = "id",
        /// Title.
        opt title: String = "title",
        /// Description.
        opt description: String = "description",
        /// Status.
        opt status: DisputeStatus = "status",
        /// Priority.
        opt priority: Priority = "priority",
        /// Category.
        opt category: DisputeCategory = "category",
        /// Who filed it.
        opt reporter_id: UserId = "reporterId",
        /// Who it is against.
        opt reported_user_id: UserId = "reportedUserId",
        /// The job concerned.
        opt job_id: JobId = "jobId",
        /// When it was filed.
        opt created_at: EventTime = "createdAt",
        /// How it was resolved.
        opt resolution: String = "resolution",
        /// When it was resolved.
        opt resolved_at: EventTime = "resolvedAt",
    }
);

data_struct!(
    /// `dispute.created`: a dispute was filed.
    pub struct DisputeCreated {
        /// The dispute.
        req dispute: Dispute = "dispute",
    }
);

data_struct!(
    /// The money and job consequences of a resolved dispute.
    pub struct Outcome {
        /// Amount refunded to the client (exact).
        opt refund_amount: Decimal = "refundAmount",
        /// Extra amount paid to the worker (exact).
        opt additional_payment: Decimal = "additionalPayment",
        /// The job's resulting status.
        opt job_status: JobStatus = "jobStatus",
    }
);

data_struct!(
    /// `dispute.resolved`: a dispute was resolved.
    pub struct DisputeResolved {
        /// The dispute.
        req dispute: Dispute = "dispute",
        /// Its outcome.
        opt outcome: Outcome = "outcome",
    }
);

event_enum!(
    /// Every TaskLink event, by its `event` field.
    TaskLinkEvent {
        /// `job.created`
        JobCreated(JobCreated) => "job.created",
        /// `job.updated`
        JobUpdated(JobUpdated) => "job.updated",
        /// `job.assigned`
        JobAssigned(JobAssigned) => "job.assigned",
        /// `job.completed`
        JobCompleted(JobCompleted) => "job.completed",
        /// `payment.created`
        PaymentCreated(PaymentCreated) => "payment.created",
        /// `payment.completed`
        PaymentCompleted(PaymentCompleted) => "payment.completed",
        /// `payment.failed`
        PaymentFailed(PaymentFailed) => "payment.failed",
        /// `payment.refunded`
        PaymentRefunded(PaymentRefunded) => "payment.refunded",
        /// `application.submitted`
        ApplicationSubmitted(ApplicationSubmitted) => "application.submitted",
        /// `application.accepted`
        ApplicationAccepted(ApplicationAccepted) => "application.accepted",
        /// `review.created`
        ReviewCreated(ReviewCreated) => "review.created",
        /// `dispute.created`
        DisputeCreated(DisputeCreated) => "dispute.created",
        /// `dispute.resolved`
        DisputeResolved(DisputeResolved) => "dispute.resolved",
    }
);
