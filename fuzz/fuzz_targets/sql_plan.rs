//! Fuzzes the SQL entry of the service: size and bracket checks, parsing, the depth check,
//! planning against the catalog's tables (with the astronomy functions) and the read-only
//! guard — exactly the path `/v1/sql`, TAP and Flight SQL take before executing. Any input
//! gets a plan or an error; a panic that escapes, or a stack overflow, is a crash.
#![no_main]

use astropipe::query::{Limits, engine, session};
use astropipe::storage::Location;
use datafusion::prelude::SessionContext;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

/// The service's context over an empty catalog: every table and function is there.
static CTX: LazyLock<SessionContext> = LazyLock::new(|| {
    RT.block_on(async {
        let loc = Location::open("memory://fuzz").unwrap();
        session::open(&loc).await.unwrap().0
    })
});

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    let limits = Limits::default();
    let _ = RT.block_on(engine::plan(&CTX, &sql, None, &limits));
});
