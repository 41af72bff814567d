//! The image-processor service as a real process: a job answered with 202 survives `kill -9`
//! of the worker and completes after a restart, exactly once in the catalog; uploads, the
//! jobs API's errors, metrics, and a graceful SIGTERM.

use super::helpers::{Proc, Scratch, copy_samples, ingest, query_strings};
use astropipe::synthetic::FrameSpec;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// The worker on 127.0.0.1:0; its base URL is read back from its own log.
fn start_worker(cat: &Path) -> (Proc, String) {
    // Inputs may come from the scratch directory the test writes them to.
    let root = cat.parent().unwrap().display().to_string();
    let catalog = cat.display().to_string();
    let mut p = Proc::spawn(
        &[
            "worker",
            "--allow-input",
            &root,
            "--catalog",
            &catalog,
            "--addr",
            "127.0.0.1:0",
            "--lease-seconds",
            "3",
            "--poll-ms",
            "200",
            "--grace-seconds",
            "5",
        ],
        &[],
        None,
    );
    let base = format!("http://{}", p.addr_of("worker serving"));
    (p, base)
}

async fn wait_ready(c: &reqwest::Client, base: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = c.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the worker did not become ready");
}

async fn json(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    (
        s,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
    )
}

async fn wait_state(c: &reqwest::Client, base: &str, id: &str, want: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let (_, j) = json(c.get(format!("{base}/v1/jobs/{id}")).send().await.unwrap()).await;
        if j["state"] == want {
            return j;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "job {id} never became {want}: {j}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_jobs_survive_kill_9_and_run_exactly_once() {
    let s = Scratch::new("worker");
    let inputs = s.path("in");
    copy_samples(&inputs, &["m13.fits", "test0.fits"]);
    for seed in 0..3 {
        let f = FrameSpec {
            width: 1024,
            height: 1024,
            n_stars: 300,
            seed,
            ..FrameSpec::default()
        }
        .generate();
        std::fs::write(inputs.join(format!("field{seed}.fits")), f.to_fits()).unwrap();
    }
    let cat = s.path("cat");
    let c = reqwest::Client::new();
    let (mut worker, base) = start_worker(&cat);
    wait_ready(&c, &base).await;
    let (status, job) = json(
        c.post(format!("{base}/v1/jobs"))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "inputs": [inputs.display().to_string()] }).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    // kill -9 right after the 202: the job is already in the store.
    worker.kill();
    assert!(cat.join(format!("_jobs/{id}/job.json")).exists());

    // The restarted worker binds a new port: the job is in the store, not in a socket.
    let (mut worker, base) = start_worker(&cat);
    wait_ready(&c, &base).await;
    let done = wait_state(&c, &base, &id, "succeeded").await;
    assert_eq!(done["result"]["files"], 5, "{done}");
    assert!(done["attempts"].as_u64().unwrap() >= 1, "{done}");
    assert!(done["error"].is_null(), "{done}");

    // Exactly what a clean ingest of the same inputs gives.
    ingest(&[&inputs], &s.path("clean")).await;
    for q in [
        "SELECT count(*) FROM exposures",
        "SELECT count(*) FROM sources",
        "SELECT count(DISTINCT source_id) FROM sources",
    ] {
        assert_eq!(
            query_strings(&cat, q).await,
            query_strings(&s.path("clean"), q).await,
            "{q}"
        );
    }

    // An uploaded FITS body is a job too.
    let body = std::fs::read(inputs.join("m13.fits")).unwrap();
    let other = s.path("cat2");
    let (mut worker2, base2) = start_worker(&other);
    wait_ready(&c, &base2).await;
    let (status, up) = json(
        c.post(format!("{base2}/v1/jobs"))
            .header("content-type", "application/fits")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{up}");
    let up_id = up["id"].as_str().unwrap().to_string();
    let done = wait_state(&c, &base2, &up_id, "succeeded").await;
    assert_eq!(done["result"]["files_ingested"], 1, "{done}");
    assert_eq!(
        query_strings(&other, "SELECT count(*) FROM exposures").await,
        ["1"]
    );

    // Errors say why.
    for (ct, body, want) in [
        ("application/json", "{\"inputs\": []}", 400),
        ("application/json", "not json", 400),
        ("application/fits", "SIMPLE  = T", 400),
    ] {
        let r = c
            .post(format!("{base}/v1/jobs"))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{body}");
    }
    assert_eq!(
        c.get(format!("{base}/v1/jobs/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let (status, conflict) = json(
        c.delete(format!("{base}/v1/jobs/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409, "{conflict}");
    // An input outside the allowed roots is refused at once.
    let (status, refused) = json(
        c.post(format!("{base}/v1/jobs"))
            .body(serde_json::json!({ "inputs": ["/etc/passwd"] }).to_string())
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "input_not_allowed", "{refused}");
    // A job over a missing input (under a root) fails with the reason, and can be retried.
    let missing = s.path("nonexistent/x.fits").display().to_string();
    let (_, bad) = json(
        c.post(format!("{base}/v1/jobs"))
            .body(serde_json::json!({ "inputs": [missing] }).to_string())
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let failed = wait_state(&c, &base, &bad_id, "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("nonexistent/x.fits"),
        "{failed}"
    );
    let (status, _) = json(
        c.post(format!("{base}/v1/jobs/{bad_id}/retry"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202);
    let (_, listed) = json(
        c.get(format!("{base}/v1/jobs?state=succeeded"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ids: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && !ids.contains(&bad_id.as_str()),
        "{listed}"
    );
    let metrics = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("astropipe_jobs_queue_depth"), "{metrics}");

    // SIGTERM: a clean exit.
    for w in [&mut worker, &mut worker2] {
        let code = w.terminate(Duration::from_secs(30));
        assert!(code.success(), "{code}");
    }
}

/// With a token, the jobs API refuses requests without it; probes and metrics stay open.
#[tokio::test]
async fn the_jobs_api_requires_the_token_when_one_is_set() {
    use astropipe::worker::{Worker, WorkerOptions};
    let s = Scratch::new("worker-auth");
    let mut opts = WorkerOptions::new(
        s.path("cat").display().to_string(),
        "127.0.0.1:0".parse().unwrap(),
    );
    let token = "worker-token-0123456789";
    opts.auth_token = Some(token.into());
    opts.poll = Duration::from_millis(100);
    opts.allowed = std::sync::Arc::new(
        astropipe::ingest::inputs::InputRoots::parse(&[s.root().display().to_string()]).unwrap(),
    );
    let worker = Worker::build(opts).await.unwrap();
    let base = format!("http://{}", worker.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(worker.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let c = reqwest::Client::new();
    let missing = s.path("nonexistent.fits").display().to_string();
    let body = serde_json::json!({ "inputs": [missing] }).to_string();
    let r = c
        .post(format!("{base}/v1/jobs"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{base}/v1/jobs"))
        .header("Authorization", "Bearer not-the-right-token!!")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{base}/v1/jobs"))
        .header("Authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    for open in ["/livez", "/readyz", "/metrics"] {
        assert_eq!(
            c.get(format!("{base}{open}"))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{open}"
        );
    }
    let _ = tx.send(());
    run.await.unwrap().unwrap();
}
