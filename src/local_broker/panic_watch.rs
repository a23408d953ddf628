//! Telling a broker's supervisor that one of its threads panicked.
//!
//! tansu's tasks run on the broker's own runtime and their panics are caught
//! by Tokio, so nothing outside sees them. A process-wide panic hook (chained
//! before the one already installed, which still prints the panic) looks up
//! the panicking thread's name and tells whoever watches that name.

use std::collections::HashMap;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, Once, PoisonError};

use tokio::sync::mpsc;

/// Watchers by thread name.
static WATCHERS: LazyLock<Mutex<HashMap<String, mpsc::UnboundedSender<String>>>> =
    LazyLock::new(Mutex::default);

static HOOK: Once = Once::new();

/// `prefix` plus a number no other call in this process got.
pub(super) fn unique_thread_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Panics on threads named `thread_name` from now on, as their messages.
pub(super) fn watch(thread_name: &str) -> mpsc::UnboundedReceiver<String> {
    HOOK.call_once(install_hook);
    let (tx, rx) = mpsc::unbounded_channel();
    WATCHERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(thread_name.to_owned(), tx);
    rx
}

/// Stops watching `thread_name`.
pub(super) fn unwatch(thread_name: &str) {
    WATCHERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(thread_name);
}

fn install_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        notify(info);
        previous(info);
    }));
}

fn notify(info: &PanicHookInfo<'_>) {
    let thread = std::thread::current();
    let Some(name) = thread.name() else {
        return;
    };
    // `try_lock`: a panic while the map is locked (on another thread) must
    // not block the panicking one; such a panic is simply not reported.
    let Ok(watchers) = WATCHERS.try_lock() else {
        return;
    };
    if let Some(watcher) = watchers.get(name) {
        drop(watcher.send(message(info)));
    }
}

fn message(info: &PanicHookInfo<'_>) -> String {
    let payload = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    match info.location() {
        Some(at) => format!("{payload} at {}:{}", at.file(), at.line()),
        None => payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_on_a_watched_thread_reaches_its_watcher_only() {
        let watched = unique_thread_name("watched");
        let other = unique_thread_name("other");
        let mut panics = watch(&watched);
        let mut others = watch(&other);
        let joined = std::thread::Builder::new()
            .name(watched.clone())
            .spawn(|| panic!("tansu says no"))
            .map(std::thread::JoinHandle::join);
        assert!(matches!(joined, Ok(Err(_))), "the thread panicked");
        let seen = panics.try_recv();
        assert!(
            seen.as_deref()
                .is_ok_and(|m| m.starts_with("tansu says no at ")),
            "{seen:?}"
        );
        assert!(others.try_recv().is_err(), "only its own watcher hears");
        unwatch(&watched);
        unwatch(&other);
    }
}
