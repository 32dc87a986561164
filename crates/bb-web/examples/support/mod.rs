//! What the benchmark examples share: positional arguments and peak memory.

#![allow(dead_code)] // each example uses what it needs

/// The `n`-th command-line argument as a number, or `default`.
pub fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/self/status` figure (`VmHWM:` peak, `VmRSS:` now) in MB; 0 where /proc is
/// not there.
#[allow(clippy::cast_precision_loss)]
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// This process's peak resident memory in MB.
pub fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// This process's resident memory now, in MB.
pub fn current_rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// The connections use-case over `store` with `providers`, as the server builds it.
pub fn connections(
    store: &std::sync::Arc<dyn bb_core::ports::Store>,
    vault: std::sync::Arc<bb_vault::Vault>,
    providers: Vec<std::sync::Arc<dyn bb_core::connections::Provider>>,
    clock: &std::sync::Arc<dyn bb_core::clock::Clock>,
    config: bb_core::connections::ConnectionsConfig,
) -> bb_core::connections::Connections {
    let jobs: std::sync::Arc<dyn bb_core::ports::JobStore> = store.clone();
    bb_core::connections::Connections::new(
        store.clone(),
        jobs,
        vault,
        std::sync::Arc::new(bb_core::library::service::Library::new(
            store.clone(),
            clock.clone(),
            bb_core::library::resolve::ResolveRules::default(),
        )),
        providers,
        clock.clone(),
        config,
        "bench",
    )
}
