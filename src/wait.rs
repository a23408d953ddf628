//! Waiting for a condition: look, and look again after a short pause, until
//! it holds or a deadline passes. The local broker's start-up and every wait
//! in the tests go through here, so none of them stands on a guessed sleep.

use std::time::Duration;

use tokio::time::Instant;

/// How long a wait pauses between two looks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Calls `check` until it returns `Ok(Ok(value))`; `Ok(Err(reason))` means
/// "not yet", `Err` stops at once.
///
/// # Errors
///
/// The last reason if `deadline` passes first, or `check`'s own error.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Result<T, String>>>,
{
    let until = Instant::now() + deadline;
    loop {
        match check().await? {
            Ok(value) => return Ok(value),
            Err(reason) if Instant::now() >= until => {
                anyhow::bail!("still not so after {deadline:?}: {reason}")
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn looks_until_the_condition_holds_or_the_deadline_passes() {
        let looks = AtomicUsize::new(0);
        let value = eventually(Duration::from_secs(1), || async {
            let n = looks.fetch_add(1, Ordering::Relaxed);
            Ok(if n >= 3 {
                Ok(n)
            } else {
                Err(format!("only {n}"))
            })
        })
        .await
        .expect("holds on the fourth look");
        assert_eq!(value, 3);

        let err = eventually(Duration::from_millis(200), || async {
            Ok(Err::<(), _>("never".to_owned()))
        })
        .await
        .expect_err("never holds");
        assert!(err.to_string().contains("never"));
    }
}
