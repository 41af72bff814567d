//! What one query may cost, and the process-wide budgets every query draws from.
//!
//! - [`Limits`]: per query — time (planning, execution and streaming the response), memory,
//!   spill bytes, rows and bytes of the result, statement size and nesting depth, and the
//!   largest value a function may build;
//! - [`Budget`]: per process — one memory pool shared by all queries (each query takes at
//!   most its own limit from it) and one spill allowance;
//! - [`LimitExceeded`]: the typed error a refused or cut-off query carries, so that the
//!   protocols map it to a status without looking at message text.

use datafusion::common::DataFusionError;
use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{MemoryLimit, MemoryPool, MemoryReservation};
use datafusion::execution::spill_file::{SpillFile, SpillWriter, TempFileFactory};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Largest SQL or ADQL statement accepted by default (`--max-query-bytes`).
pub const DEFAULT_MAX_STATEMENT_BYTES: usize = 256 << 10;
/// Deepest expression / subquery nesting (and longest UNION or JOIN chain) accepted by default
/// (`--max-query-depth`).
pub const DEFAULT_MAX_DEPTH: usize = 128;
/// Largest value (one string, binary or list) a function may build by default
/// (`--max-value-mb`).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 16 << 20;

/// What one query may use. `None` is no limit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Planning, execution and streaming the whole response.
    pub timeout: Option<Duration>,
    /// Bytes of memory for the query's operators (sorts and joins spill or fail beyond).
    pub memory: Option<usize>,
    /// Rows in a result; more are cut off and the result is marked truncated.
    pub max_rows: Option<usize>,
    /// Encoded bytes of a result; more are cut off and the result is marked truncated.
    pub max_result_bytes: Option<usize>,
    /// Bytes a query may spill to disk (sorts, joins, aggregations beyond its memory).
    pub spill_bytes: Option<u64>,
    /// Bytes of SQL or ADQL text.
    pub max_statement_bytes: usize,
    /// Nesting of expressions and subqueries, and length of UNION / JOIN chains.
    pub max_depth: usize,
    /// Bytes of one value built by a function such as `repeat` or `lpad`.
    pub max_value_bytes: usize,
}

impl Default for Limits {
    /// No caps on time, memory or result size; the structural bounds (statement size,
    /// depth, value size) always hold, because they protect the process itself.
    fn default() -> Self {
        Limits {
            timeout: None,
            memory: None,
            max_rows: None,
            max_result_bytes: None,
            spill_bytes: None,
            max_statement_bytes: DEFAULT_MAX_STATEMENT_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// Why a query was refused or cut off by a limit. Carried inside DataFusion errors as
/// `DataFusionError::External` so that it survives execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error(
        "the statement is {size} bytes long; at most {max} bytes are accepted (--max-query-bytes)"
    )]
    StatementSize { size: usize, max: usize },
    #[error(
        "the statement nests {what} more than {max} deep (--max-query-depth); write long chains as IN (...) lists or split the query"
    )]
    Depth { what: &'static str, max: usize },
    #[error(
        "{function}(...) would build a value of {bytes} bytes; one value may hold at most {max} bytes (--max-value-mb)"
    )]
    Value {
        function: String,
        bytes: u64,
        max: usize,
    },
    #[error(
        "{function}(...) would build {bytes} bytes for one batch of rows, more than one query may use ({max} bytes, --query-memory-mb)"
    )]
    Batch {
        function: String,
        bytes: u64,
        max: usize,
    },
    #[error("the query ran longer than {seconds} s (--query-timeout-seconds)")]
    Timeout { seconds: u64 },
    #[error("{}", if *all_queries {
        format!("all queries together use the service's {max} bytes of spill space (--spill-mb); try again later")
    } else {
        format!("the query needs more than its {max} bytes of spill space (--query-spill-mb)")
    })]
    Spill { max: u64, all_queries: bool },
}

impl LimitExceeded {
    /// A short name for metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            LimitExceeded::StatementSize { .. } => "statement_bytes",
            LimitExceeded::Depth { .. } => "statement_depth",
            LimitExceeded::Value { .. } => "value_bytes",
            LimitExceeded::Batch { .. } => "batch_bytes",
            LimitExceeded::Timeout { .. } => "timeout",
            LimitExceeded::Spill { .. } => "spill_bytes",
        }
    }

    /// This limit as a DataFusion error (kept typed inside `External`).
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }

    /// The limit inside a DataFusion error, if that is what it is (looking through context
    /// wrappers and shared errors).
    pub fn find(e: &DataFusionError) -> Option<&LimitExceeded> {
        let mut root = e;
        loop {
            match root {
                DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
                    root = inner
                }
                DataFusionError::Shared(inner) => root = inner.as_ref(),
                DataFusionError::External(x) => {
                    if let Some(l) = x.downcast_ref::<LimitExceeded>() {
                        return Some(l);
                    }
                    return x
                        .downcast_ref::<DataFusionError>()
                        .and_then(LimitExceeded::find);
                }
                DataFusionError::ArrowError(a, _) => {
                    return match a.as_ref() {
                        arrow::error::ArrowError::ExternalError(x) => {
                            x.downcast_ref::<LimitExceeded>().or_else(|| {
                                x.downcast_ref::<DataFusionError>()
                                    .and_then(LimitExceeded::find)
                            })
                        }
                        arrow::error::ArrowError::IoError(_, io) => in_io(io),
                        _ => None,
                    };
                }
                DataFusionError::IoError(io) => return in_io(io),
                _ => return None,
            }
        }
    }
}

/// A limit carried inside an I/O error (a spill write refused).
fn in_io(e: &std::io::Error) -> Option<&LimitExceeded> {
    e.get_ref()?.downcast_ref::<LimitExceeded>()
}

/// The process-wide budgets.
#[derive(Debug)]
pub struct Budget {
    memory: Arc<SharedPool>,
    spill_total: u64,
    spill_used: Arc<AtomicU64>,
}

impl Budget {
    /// Budgets of `memory` bytes for all queries together and `spill` bytes of spill files.
    pub fn new(memory: usize, spill: u64) -> Arc<Self> {
        Arc::new(Budget {
            memory: Arc::new(SharedPool {
                limit: memory,
                used: AtomicUsize::new(0),
            }),
            spill_total: spill,
            spill_used: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Effectively unlimited budgets (one-off commands, tests).
    pub fn unlimited() -> Arc<Self> {
        Self::new(usize::MAX / 4, u64::MAX / 4)
    }

    /// Bytes reserved by running queries now.
    pub fn memory_used(&self) -> usize {
        self.memory.used.load(Ordering::Acquire)
    }

    pub fn memory_limit(&self) -> usize {
        self.memory.limit
    }

    /// Bytes of spill files on disk now.
    pub fn spill_used(&self) -> u64 {
        self.spill_used.load(Ordering::Acquire)
    }

    /// A memory pool for one query: at most `limit` bytes, taken from the shared budget.
    pub fn query_pool(&self, limit: Option<usize>) -> Arc<QueryPool> {
        Arc::new(QueryPool {
            shared: self.memory.clone(),
            limit: limit.unwrap_or(usize::MAX).min(self.memory.limit),
            used: AtomicUsize::new(0),
            shared_exhausted: AtomicBool::new(false),
        })
    }

    /// Spill files for one query: at most `limit` bytes for it, all queries within the total;
    /// each write beyond fails with [`LimitExceeded::Spill`].
    pub fn spill_factory(self: &Arc<Self>, limit: u64) -> datafusion::common::Result<SpillFactory> {
        let disk = DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::OsTmpDirectory)
            .build()?;
        Ok(SpillFactory {
            disk: Arc::new(disk),
            query_used: Arc::new(AtomicU64::new(0)),
            query_limit: limit,
            total_used: self.spill_used.clone(),
            total_limit: self.spill_total,
        })
    }
}

/// Creates one query's spill files and keeps their bytes within its limit and the total.
pub struct SpillFactory {
    disk: Arc<DiskManager>,
    query_used: Arc<AtomicU64>,
    query_limit: u64,
    total_used: Arc<AtomicU64>,
    total_limit: u64,
}

impl TempFileFactory for SpillFactory {
    fn create_temp_file(
        &self,
        description: &str,
    ) -> datafusion::common::Result<Arc<dyn SpillFile>> {
        let inner = self.disk.create_tmp_file(description)?;
        Ok(Arc::new(CountedFile {
            inner,
            written: Arc::new(AtomicU64::new(0)),
            query_used: self.query_used.clone(),
            query_limit: self.query_limit,
            total_used: self.total_used.clone(),
            total_limit: self.total_limit,
        }))
    }
}

/// A spill file whose bytes count against the limits until it is deleted.
struct CountedFile {
    inner: Arc<dyn SpillFile>,
    written: Arc<AtomicU64>,
    query_used: Arc<AtomicU64>,
    query_limit: u64,
    total_used: Arc<AtomicU64>,
    total_limit: u64,
}

impl Drop for CountedFile {
    fn drop(&mut self) {
        let n = self.written.swap(0, Ordering::AcqRel);
        self.query_used.fetch_sub(n, Ordering::AcqRel);
        self.total_used.fetch_sub(n, Ordering::AcqRel);
    }
}

impl SpillFile for CountedFile {
    fn path(&self) -> Option<&std::path::Path> {
        self.inner.path()
    }
    fn size(&self) -> Option<u64> {
        self.inner.size()
    }
    fn read_stream(
        &self,
    ) -> datafusion::common::Result<
        std::pin::Pin<
            Box<dyn futures::Stream<Item = datafusion::common::Result<bytes::Bytes>> + Send>,
        >,
    > {
        self.inner.read_stream()
    }
    fn open_writer(&self) -> datafusion::common::Result<Box<dyn SpillWriter>> {
        Ok(Box::new(CountingWriter {
            inner: self.inner.open_writer()?,
            written: self.written.clone(),
            query_used: self.query_used.clone(),
            query_limit: self.query_limit,
            total_used: self.total_used.clone(),
            total_limit: self.total_limit,
        }))
    }
}

struct CountingWriter {
    inner: Box<dyn SpillWriter>,
    written: Arc<AtomicU64>,
    query_used: Arc<AtomicU64>,
    query_limit: u64,
    total_used: Arc<AtomicU64>,
    total_limit: u64,
}

fn take(counter: &AtomicU64, n: u64, limit: u64) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
            u.checked_add(n).filter(|t| *t <= limit)
        })
        .is_ok()
}

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len() as u64;
        if !take(&self.query_used, n, self.query_limit) {
            return Err(std::io::Error::other(LimitExceeded::Spill {
                max: self.query_limit,
                all_queries: false,
            }));
        }
        if !take(&self.total_used, n, self.total_limit) {
            self.query_used.fetch_sub(n, Ordering::AcqRel);
            return Err(std::io::Error::other(LimitExceeded::Spill {
                max: self.total_limit,
                all_queries: true,
            }));
        }
        match self.inner.write(buf) {
            Ok(w) => {
                // Give back what was not written.
                let unused = n - w as u64;
                self.query_used.fetch_sub(unused, Ordering::AcqRel);
                self.total_used.fetch_sub(unused, Ordering::AcqRel);
                self.written.fetch_add(w as u64, Ordering::AcqRel);
                Ok(w)
            }
            Err(e) => {
                self.query_used.fetch_sub(n, Ordering::AcqRel);
                self.total_used.fetch_sub(n, Ordering::AcqRel);
                Err(e)
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl SpillWriter for CountingWriter {
    fn finish(&mut self) -> datafusion::common::Result<()> {
        self.inner.finish()
    }
}

#[derive(Debug)]
struct SharedPool {
    limit: usize,
    used: AtomicUsize,
}

impl SharedPool {
    fn try_take(&self, n: usize) -> Result<(), usize> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.limit)
            })
            .map(|_| ())
    }
}

/// One query's memory pool: DataFusion's operators reserve from it; it enforces the query's
/// own limit and takes every byte from the process-wide pool.
#[derive(Debug)]
pub struct QueryPool {
    shared: Arc<SharedPool>,
    limit: usize,
    used: AtomicUsize,
    /// Whether the last refused reservation was refused because all queries together used
    /// the shared budget (the query itself was within its limit): then the service is busy,
    /// the query is not too big.
    shared_exhausted: AtomicBool,
}

impl QueryPool {
    /// Whether the last refusal was for lack of shared memory (rather than this query's limit).
    pub fn shared_exhausted(&self) -> bool {
        self.shared_exhausted.load(Ordering::Acquire)
    }
}

impl std::fmt::Display for QueryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "query pool (used {} of {} bytes; the service's pool: {} of {})",
            self.used.load(Ordering::Relaxed),
            self.limit,
            self.shared.used.load(Ordering::Relaxed),
            self.shared.limit
        )
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "astropipe-query"
    }

    fn grow(&self, _reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::AcqRel);
        self.shared.used.fetch_add(additional, Ordering::AcqRel);
    }

    fn shrink(&self, _reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::AcqRel);
        self.shared.used.fetch_sub(shrink, Ordering::AcqRel);
    }

    fn try_grow(
        &self,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> datafusion::common::Result<()> {
        let consumer = reservation.consumer().name().to_string();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(additional).filter(|t| *t <= self.limit)
            })
            .map_err(|u| {
                self.shared_exhausted.store(false, Ordering::Release);
                DataFusionError::ResourcesExhausted(format!(
                    "{consumer} needs {additional} more bytes; the query already uses {u} of its {} (--query-memory-mb)",
                    self.limit
                ))
            })?;
        if let Err(u) = self.shared.try_take(additional) {
            self.used.fetch_sub(additional, Ordering::AcqRel);
            self.shared_exhausted.store(true, Ordering::Release);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{consumer} needs {additional} more bytes; all queries together use {u} of the service's {} (--memory-mb)",
                self.shared.limit
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

impl Drop for QueryPool {
    fn drop(&mut self) {
        // Whatever is still reserved goes back to the shared pool.
        let left = self.used.swap(0, Ordering::AcqRel);
        if left > 0 {
            self.shared.used.fetch_sub(left, Ordering::AcqRel);
        }
    }
}

/// The memory this process may use: the cgroup limit of its container when there is one,
/// else the machine's memory.
pub fn available_memory() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    // cgroup v2, then v1 (whose "no limit" is a huge number).
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .or_else(|| {
            read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
                .and_then(|s| s.trim().parse::<u64>().ok())
                .filter(|v| *v < (1u64 << 60))
        });
    let physical = read("/proc/meminfo").and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    match (cgroup, physical) {
        (Some(c), Some(p)) => Some(c.min(p)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::MemoryConsumer;

    #[test]
    fn each_query_takes_at_most_its_limit_from_the_shared_pool() {
        let budget = Budget::new(1000, 0);
        let a = budget.query_pool(Some(600));
        let b = budget.query_pool(Some(600));
        let pa: Arc<dyn MemoryPool> = a.clone();
        let pb: Arc<dyn MemoryPool> = b.clone();
        let ra = MemoryConsumer::new("a").register(&pa);
        let rb = MemoryConsumer::new("b").register(&pb);
        ra.try_grow(500).unwrap();
        // Over its own limit.
        assert!(ra.try_grow(200).is_err());
        assert!(!a.shared_exhausted());
        let rb0 = MemoryConsumer::new("b0").register(&pb);
        drop(rb0);
        // Within its limit, but the shared pool has only 500 left.
        rb.try_grow(500).unwrap();
        assert!(rb.try_grow(50).is_err());
        assert!(b.shared_exhausted());
        assert_eq!(budget.memory_used(), 1000);
        drop(ra);
        assert_eq!(budget.memory_used(), 500);
        drop(rb);
        drop((a, b, pa, pb));
        assert_eq!(budget.memory_used(), 0);
    }

    #[test]
    fn spill_writes_stop_at_the_query_limit_and_the_total() {
        use std::io::Write;
        let budget = Budget::new(1, 100);
        let a = budget.spill_factory(70).unwrap();
        let b = budget.spill_factory(70).unwrap();
        let fa = a.create_temp_file("a").unwrap();
        let fb = b.create_temp_file("b").unwrap();
        let mut wa = fa.open_writer().unwrap();
        let mut wb = fb.open_writer().unwrap();
        wa.write_all(&[0; 60]).unwrap();
        let e = wa.write_all(&[0; 20]).unwrap_err();
        assert_eq!(
            e.get_ref().and_then(|x| x.downcast_ref::<LimitExceeded>()),
            Some(&LimitExceeded::Spill {
                max: 70,
                all_queries: false
            })
        );
        let e = wb.write_all(&[0; 50]).unwrap_err();
        assert_eq!(
            e.get_ref().and_then(|x| x.downcast_ref::<LimitExceeded>()),
            Some(&LimitExceeded::Spill {
                max: 100,
                all_queries: true
            })
        );
        assert_eq!(budget.spill_used(), 60);
        drop((wa, fa));
        assert_eq!(budget.spill_used(), 0);
        wb.write_all(&[0; 50]).unwrap();
    }

    #[test]
    fn limits_are_found_inside_wrapped_errors() {
        let e = LimitExceeded::Timeout { seconds: 5 }.into_datafusion();
        let wrapped = DataFusionError::Context("x".into(), Box::new(e));
        assert_eq!(
            LimitExceeded::find(&wrapped),
            Some(&LimitExceeded::Timeout { seconds: 5 })
        );
        assert_eq!(
            LimitExceeded::find(&DataFusionError::Execution("x".into())),
            None
        );
    }
}
