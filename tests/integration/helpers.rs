//! Shared test helpers: scratch directories, sample files, a real server on port 0.

use arrow::array::Array;
use astropipe::ingest::{self, IngestOptions, IngestReport};
use astropipe::server::{ServeOptions, Server};
use astropipe::service::AppState;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The repository root, looked up when the test runs (cargo sets CARGO_MANIFEST_DIR for
/// test processes): a test binary reused from a build in another checkout (CI's clean clone
/// shares the target directory) must not read that checkout's files.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

pub fn data_dir() -> PathBuf {
    repo_root().join("tests/data")
}

/// A scratch directory (a `tempfile::TempDir`, removed on drop, even when a test panics).
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        Scratch(
            tempfile::Builder::new()
                .prefix(&format!("astropipe-test-{tag}-"))
                .tempdir()
                .expect("create scratch dir"),
        )
    }
    pub fn root(&self) -> &Path {
        self.0.path()
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel)
    }
}

/// Copies sample files from tests/data into `dir`.
pub fn copy_samples(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for n in names {
        std::fs::copy(data_dir().join(n), dir.join(n)).unwrap_or_else(|e| panic!("copy {n}: {e}"));
    }
}

pub async fn ingest(inputs: &[&Path], catalog: &Path) -> IngestReport {
    let opts = IngestOptions::new(
        inputs.iter().map(|p| p.display().to_string()).collect(),
        catalog.display().to_string(),
    );
    ingest::run(&opts).await.expect("ingest runs")
}

/// A running server on 127.0.0.1:0 and a client for it.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Where Flight SQL listens, when the options asked for it.
    pub flight_addr: Option<SocketAddr>,
    pub state: Arc<AppState>,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(catalog: &Path) -> Self {
        let mut opts = ServeOptions::new(
            catalog.display().to_string(),
            "127.0.0.1:0".parse().unwrap(),
        );
        opts.refresh = Duration::from_secs(1);
        Self::start_with(opts).await
    }

    /// A server with the given options (its address is replaced by 127.0.0.1:0).
    pub async fn start_with(mut opts: ServeOptions) -> Self {
        opts.addr = "127.0.0.1:0".parse().unwrap();
        let server = Server::build(&opts).await.expect("server builds");
        let addr = server.local_addr().unwrap();
        let flight_addr = server.flight_addr();
        let state = server.state();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run_until_stopped(async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            flight_addr,
            state,
            client: reqwest::Client::new(),
            stop: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs SQL and returns (status, content type, body).
    pub async fn sql(&self, sql: &str, accept: Option<&str>) -> (u16, String, Vec<u8>) {
        let mut req = self.client.post(self.url("/v1/sql")).body(sql.to_string());
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, ct, resp.bytes().await.unwrap().to_vec())
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self.client.get(self.url("/metrics")).send().await;
        resp.expect("request").text().await.expect("metrics text")
    }

    /// The value of one sample of `/metrics`, named with its labels as exposed
    /// (`name{label="v"}`), or 0 when it is not there yet.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// GETs a JSON document.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let resp = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        serde_json::from_slice(&resp.bytes().await.unwrap()).expect("JSON body")
    }

    /// Runs SQL expecting 200 and a JSON array of row objects.
    pub async fn rows(&self, sql: &str) -> Vec<serde_json::Value> {
        let (status, _, body) = self.sql(sql, None).await;
        assert_eq!(status, 200, "{sql}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Runs SQL on a local catalog and returns the first column of every row as text.
pub async fn query_strings(catalog: &Path, sql: &str) -> Vec<String> {
    let loc = astropipe::storage::Location::open(&catalog.display().to_string()).unwrap();
    let (ctx, _) = astropipe::query::session::open(&loc).await.unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        let col = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let col = col
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        for i in 0..col.len() {
            out.push(if col.is_null(i) {
                "NULL".to_string()
            } else {
                col.value(i).to_string()
            });
        }
    }
    out
}

/// Says `SKIPPED: why` on the real stderr (libtest captures `eprintln!` of passing tests, so
/// a skipped test would otherwise say nothing under a bare `cargo test`).
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// Whether tests that need the external tools (the Python venv, the moto S3 server) must run:
/// `tests/run-all.sh` provides them and sets ASTROPIPE_TEST_REQUIRE_EXTERNAL=1, so there a
/// missing tool fails the test; a bare `cargo test` skips those tests with a message.
pub fn external(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("ASTROPIPE_TEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
                panic!("{var} is not set: run the tests with ./tests/run-all.sh");
            }
            skipped(&format!("{var} is not set (./tests/run-all.sh sets it)"));
            None
        }
    }
}

/// The Python of the test venv (with moto, hats, LSDB, pyvo, ADBC).
pub fn test_python() -> Option<PathBuf> {
    external("ASTROPIPE_TEST_PYTHON").map(PathBuf::from)
}

/// The moto S3 endpoint started by the test script.
pub fn s3_endpoint() -> Option<String> {
    external("ASTROPIPE_TEST_S3_ENDPOINT")
}

/// Runs a Python script from tests/python with the test venv; returns its stdout parsed as JSON.
pub fn run_python(python: &Path, script: &str, args: &[&str]) -> serde_json::Value {
    let path = repo_root().join("tests/python").join(script);
    let out = std::process::Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The astropipe binary, with an environment.
pub fn astropipe(env: &[(&str, &str)]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_astropipe"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.env("RUST_LOG", "warn");
    c
}

/// Runs the binary to success and returns stdout.
pub fn astropipe_ok(env: &[(&str, &str)], args: &[&str]) -> String {
    let out = astropipe(env).args(args).output().expect("astropipe runs");
    assert!(
        out.status.success(),
        "astropipe {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A catalog of two real samples and an 80-star synthetic field under `s/cat`; returns the
/// field's centre (ra, dec) in degrees. Used by the protocol tests (Flight SQL, IVOA).
pub async fn sample_field_catalog(s: &Scratch) -> (f64, f64) {
    let inputs = s.path("in");
    copy_samples(&inputs, &["m13.fits", "test0.fits"]);
    let frame = astropipe::synthetic::FrameSpec {
        width: 512,
        height: 512,
        n_stars: 80,
        ..astropipe::synthetic::FrameSpec::default()
    }
    .generate();
    std::fs::write(inputs.join("synthetic.fits"), frame.to_fits()).unwrap();
    ingest(&[&inputs], &s.path("cat")).await;
    (frame.spec.ra0, frame.spec.dec0)
}

/// A process of the real binary, killed when dropped (so a failing assert leaves nothing
/// behind). Its JSON log lines are read as they come, so the addresses it bound (port 0) are
/// read back from its own "serving" lines — no pick-a-free-port-then-spawn race.
pub struct Proc {
    pub child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Proc {
    /// Starts `astropipe ARGS` with `env`; `fd_limit` lowers its open-file limit.
    pub fn spawn(args: &[&str], env: &[(&str, &str)], fd_limit: Option<u64>) -> Proc {
        use std::io::BufRead;
        let mut cmd = astropipe(env);
        cmd.env("RUST_LOG", "info")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        if let Some(n) = fd_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child here.
            unsafe {
                cmd.pre_exec(move || {
                    let r = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("astropipe starts");
        let out = child.stdout.take().expect("piped stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Proc { child, lines }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `addr` of the first log line whose message is `message` (waits up to 60 s).
    pub fn addr_of(&mut self, message: &str) -> SocketAddr {
        let t0 = std::time::Instant::now();
        loop {
            if let Some(a) = self.lines.lock().unwrap().iter().find_map(|l| {
                (l["fields"]["message"] == message)
                    .then(|| l["fields"]["addr"].as_str()?.parse().ok())
                    .flatten()
            }) {
                return a;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("astropipe exited ({st}) before logging {message:?}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "astropipe never logged {message:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A field of `/proc/PID/status` in KiB (VmHWM: peak resident memory; VmRSS: now).
    pub fn status_kib(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Sends SIGKILL and waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `within` for the exit; panics if it does not come.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM: {}", std::io::Error::last_os_error());
        let t0 = std::time::Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st;
            }
            assert!(
                t0.elapsed() < within,
                "no exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit by itself (up to `within`) and returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let t0 = std::time::Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st;
            }
            assert!(t0.elapsed() < within, "still running after {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `multipart/form-data` body (built here: reqwest's multipart feature would change the
/// features of the reqwest object_store uses, and rebuild the dependency tree for tests).
/// Each part: name, file name (None for a plain field), bytes. Returns (content type, body).
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "astropipe-test-boundary-7e1f0c";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/x-votable+xml\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
