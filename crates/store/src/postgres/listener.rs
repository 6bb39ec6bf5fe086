//! The change feed's receiving end: a task that LISTENs on [`LEDGER_CHANNEL`] and turns each notification
//! (the newest ledger sequence number, sent by an append's commit on any node) into a signal for
//! [`Store::change_signals`](crate::Store::change_signals). It reconnects after a lost connection; the
//! server also catches up on a timer, so a missed notification only delays visibility.

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;

/// The channel on which commits announce the new ledger head.
pub const LEDGER_CHANNEL: &str = "consentry_ledger";

pub(super) async fn listen_loop(pool: PgPool, signals: watch::Sender<u64>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(LEDGER_CHANNEL).await {
                    tracing::warn!(error = %e, "cannot LISTEN for ledger changes; retrying");
                } else {
                    loop {
                        match listener.recv().await {
                            Ok(n) => {
                                if let Ok(seq) = n.payload().parse::<u64>() {
                                    signals.send_if_modified(|cur| {
                                        let newer = seq > *cur;
                                        if newer {
                                            *cur = seq;
                                        }
                                        newer
                                    });
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "ledger change listener lost its connection; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect the ledger change listener; retrying"),
        }
        if signals.is_closed() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
