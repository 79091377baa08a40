//! Prompt pick-up: one `LISTEN` connection per store wakes its idle dispatchers.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;

use super::{AbortOnDrop, PostgresStore};

impl PostgresStore {
    /// Starts the `LISTEN` task once; returns a receiver that has seen every signal so far.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        let receiver = self.inner.wake.subscribe();
        if tokio::runtime::Handle::try_current().is_ok() {
            self.inner.listener.get_or_init(|| {
                AbortOnDrop(tokio::spawn(listen(
                    self.inner.pool.clone(),
                    self.inner.channel.clone(),
                    Arc::clone(&self.inner.wake),
                )))
            });
        }
        receiver
    }
}

/// Listens on `channel` and bumps `wake` on every notification and after every
/// (re)connection (a notification may have been missed while disconnected).
async fn listen(pool: PgPool, channel: String, wake: Arc<watch::Sender<u64>>) {
    let bump = || wake.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if listener.listen(&channel).await.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        bump();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => bump(),
                // The connection dropped; the next call reconnects and listens again.
                Ok(None) => bump(),
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}
