//! The transactional outbox (feature `postgres`): publishing inside the caller's own
//! PostgreSQL transaction, so the business change and its webhooks commit or roll back
//! together.

use sqlx::postgres::PgConnection;

use super::sender::{accepted, only};
use super::store::PostgresStore;
use super::{MessageId, PublishError, Sender};
use crate::event::OutgoingEvent;

#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
impl Sender<PostgresStore> {
    /// Publishes one event inside your transaction: the message and its deliveries are
    /// written through `conn` (a `&mut Transaction<Postgres>` derefs to it) and become
    /// visible to dispatchers — on every host, woken by `NOTIFY` — only when you commit.
    /// A rollback leaves nothing.
    ///
    /// The tables must be reachable from `conn`'s database (same database as the store; the
    /// schema is named explicitly, so `search_path` does not matter).
    ///
    /// ```no_run
    /// # async fn demo(pool: sqlx::PgPool, sender: hookrelay::send::Sender<hookrelay::send::PostgresStore>)
    /// # -> Result<(), Box<dyn std::error::Error>> {
    /// use hookrelay::event::OutgoingEvent;
    ///
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("UPDATE orders SET state = 'paid' WHERE id = $1")
    ///     .bind(42_i64)
    ///     .execute(&mut *tx)
    ///     .await?;
    /// let event = OutgoingEvent::new("order.paid", serde_json::json!({"orderId": 42}));
    /// sender.publish_in(&mut tx, event).await?;
    /// tx.commit().await?; // the order and its webhook, together
    /// # Ok(()) }
    /// ```
    ///
    /// A store failure is a [`PublishError::Store`] holding a [`StoreError`](crate::StoreError);
    /// ask it whether the transaction is worth running again (a serialization failure under
    /// `REPEATABLE READ`/`SERIALIZABLE`, a deadlock, a lost connection) — never compare its
    /// message:
    ///
    /// ```no_run
    /// # async fn demo(pool: sqlx::PgPool, sender: hookrelay::send::Sender<hookrelay::send::PostgresStore>)
    /// # -> Result<(), Box<dyn std::error::Error>> {
    /// use hookrelay::event::OutgoingEvent;
    /// use hookrelay::send::PublishError;
    ///
    /// loop {
    ///     let mut tx = pool.begin().await?;
    ///     let event = OutgoingEvent::new("order.paid", serde_json::json!({"orderId": 42}));
    ///     match sender.publish_in(&mut tx, event).await {
    ///         Ok(_) => {}
    ///         Err(PublishError::Store(err)) if err.is_retryable() => continue, // rolled back
    ///         Err(err) => return Err(err.into()),
    ///     }
    ///     tx.commit().await?;
    ///     break;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn publish_in(
        &self,
        conn: &mut PgConnection,
        event: OutgoingEvent,
    ) -> Result<MessageId, PublishError> {
        only(self.publish_all_in(conn, vec![(event, None)]).await?)
    }

    /// [`publish_in`](Self::publish_in) with a producer idempotency key (see
    /// [`publish_with_key`](Self::publish_with_key)): within the key's window, the same key
    /// returns the first message's id and creates nothing. A concurrent transaction holding
    /// the same key makes this call wait for its commit or rollback. Under `REPEATABLE READ`
    /// or `SERIALIZABLE`, a key committed by a concurrent transaction after yours began
    /// fails this call with a serialization failure, as PostgreSQL's `ON CONFLICT` does: the
    /// error [is retryable](crate::StoreError::is_retryable) (`PublishError::Store(err)` with
    /// `err.is_retryable()`): run your transaction again.
    pub async fn publish_with_key_in(
        &self,
        conn: &mut PgConnection,
        event: OutgoingEvent,
        key: impl Into<String>,
    ) -> Result<MessageId, PublishError> {
        only(
            self.publish_all_in(conn, vec![(event, Some(key.into()))])
                .await?,
        )
    }

    /// Publishes many events inside your transaction, in a constant number of statements;
    /// ids in the same order.
    pub async fn publish_batch_in(
        &self,
        conn: &mut PgConnection,
        events: Vec<OutgoingEvent>,
    ) -> Result<Vec<MessageId>, PublishError> {
        self.publish_all_in(conn, events.into_iter().map(|e| (e, None)).collect())
            .await
    }

    async fn publish_all_in(
        &self,
        conn: &mut PgConnection,
        events: Vec<(OutgoingEvent, Option<String>)>,
    ) -> Result<Vec<MessageId>, PublishError> {
        let (publications, endpoints, now) = self.prepare(events).await?;
        // No local wake-up here: nothing is visible before the caller commits; the NOTIFY
        // sent at commit wakes this process's dispatchers as well as everyone else's.
        let results = self
            .shared
            .store
            .enqueue_in(conn, publications, now)
            .await?;
        Ok(accepted(&endpoints, results))
    }
}
