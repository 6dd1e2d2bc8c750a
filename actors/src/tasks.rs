//! Task helpers for the actors: short ids, and spawned tasks that die with their owner.

/// Aborts a task when dropped (also when the owning actor dies by panic).
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A short random id (no uuid dependency in this crate).
pub(crate) fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{:x}{:06x}",
        t ^ (n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        n & 0xff_ffff
    )
}
