//! Media ports from the configured range (`webrtc.udp_port_min`..`udp_port_max`), one
//! per connection, returned when the connection is gone.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

/// Media ports from the configured range, one per connection, returned on drop.
pub(super) struct PortPool {
    min: u16,
    max: u16,
    next: AtomicU16,
    used: Mutex<BTreeSet<u16>>,
}

/// One port, leased until dropped.
pub(super) struct PortLease {
    pool: Arc<PortPool>,
    pub(super) port: u16,
}

impl PortPool {
    pub(super) fn new(min: u16, max: u16) -> Self {
        Self {
            min,
            max,
            next: AtomicU16::new(min),
            used: Mutex::new(BTreeSet::new()),
        }
    }

    /// The next free port after the last one leased (spreading reuse), if any.
    pub(super) fn lease(pool: &Arc<Self>) -> Option<PortLease> {
        let span = u32::from(pool.max - pool.min) + 1;
        let mut used = pool.used.lock().unwrap_or_else(|e| e.into_inner());
        let start = pool.next.load(Ordering::Relaxed);
        for i in 0..span {
            let offset = (u32::from(start - pool.min) + i) % span;
            let port = pool.min + offset as u16;
            if used.insert(port) {
                let after = if port == pool.max { pool.min } else { port + 1 };
                pool.next.store(after, Ordering::Relaxed);
                return Some(PortLease {
                    pool: pool.clone(),
                    port,
                });
            }
        }
        None
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool
            .used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_leased_once_and_returned_on_drop() {
        let pool = Arc::new(PortPool::new(40000, 40002));
        let a = PortPool::lease(&pool).expect("first");
        let b = PortPool::lease(&pool).expect("second");
        let c = PortPool::lease(&pool).expect("third");
        let mut ports = vec![a.port, b.port, c.port];
        ports.sort_unstable();
        assert_eq!(ports, vec![40000, 40001, 40002]);
        assert!(PortPool::lease(&pool).is_none(), "the range is exhausted");
        let freed = b.port;
        drop(b);
        assert_eq!(PortPool::lease(&pool).expect("reused").port, freed);
    }
}
