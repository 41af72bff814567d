//! The catalog on S3: the real binary against a real S3-compatible server (moto_server on
//! 127.0.0.1, started by tests/run-all.sh), configured only by the standard AWS environment.

use super::helpers::{
    Proc, Scratch, astropipe, astropipe_ok, copy_samples, ingest, query_strings, s3_endpoint,
};
use futures::TryStreamExt;
use object_store::ObjectStore;
use std::time::Duration;

/// A fresh bucket on the moto server; the AWS environment for the binary.
struct Bucket {
    name: String,
    env: Vec<(&'static str, String)>,
    store: object_store::aws::AmazonS3,
}

impl Bucket {
    async fn create(endpoint: &str, tag: &str) -> Bucket {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("astropipe-{tag}-{}-{n}", std::process::id());
        let resp = reqwest::Client::new()
            .put(format!("{endpoint}/{name}"))
            .send()
            .await
            .expect("create bucket");
        assert!(
            resp.status().is_success(),
            "create bucket: {}",
            resp.status()
        );
        let env = vec![
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ];
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&name)
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap();
        Bucket { name, env, store }
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    fn uri(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        let p = object_store::path::Path::from(prefix);
        let mut v: Vec<String> = self
            .store
            .list(Some(&p))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        v.sort();
        v
    }
}

fn sql(env: &[(&str, &str)], catalog: &str, q: &str) -> Vec<String> {
    astropipe_ok(env, &["sql", "--catalog", catalog, "--format", "csv", q])
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn ingest_compact_sql_and_serve_on_s3() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let bucket = Bucket::create(&endpoint, "cat").await;
    let env = bucket.env();
    let s = Scratch::new("s3");
    let inputs = s.path("in");
    copy_samples(&inputs, &["m13.fits", "sip-wcs.fits", "test0.fits"]);
    let uri = bucket.uri("survey/cat");
    let inp = inputs.display().to_string();

    let out = astropipe_ok(
        &env,
        &[
            "ingest",
            &inp,
            "--catalog",
            &uri,
            "--json",
            "--chunk-files",
            "1",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["files_ingested"], 3, "{out}");
    // Reference: the same inputs into a local catalog.
    let local = s.path("local");
    ingest(&[&inputs], &local).await;
    let q = "SELECT count(*) || ' ' || count(DISTINCT source_id) || ' ' || round(sum(flux), 3) FROM sources";
    let expect = query_strings(&local, q).await;
    assert_eq!(sql(&env, &uri, q), expect);

    // The layout in the bucket: commit records and increments under the prefix.
    let keys = bucket.keys("survey/cat").await;
    assert_eq!(
        keys.iter().filter(|k| k.contains("/_commits/")).count(),
        3,
        "{keys:?}"
    );
    assert!(
        keys.iter().all(|k| k.starts_with("survey/cat/")),
        "{keys:?}"
    );

    // Re-ingesting is a no-op (the commit log is read from S3).
    let out = astropipe_ok(&env, &["ingest", &inp, "--catalog", &uri, "--json"]);
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["files_ingested"], 0, "{out}");
    assert_eq!(again["files_already_ingested"], 3, "{out}");

    // Compaction on S3: HATS files in the bucket, same answers, increments collected.
    let out = astropipe_ok(
        &env,
        &[
            "compact",
            "--catalog",
            &uri,
            "--max-rows",
            "100",
            "--gc-grace-seconds",
            "0",
            "--json",
        ],
    );
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(c["partitions"].as_u64().unwrap() > 1, "{out}");
    let keys = bucket.keys("survey/cat").await;
    let generation = c["generation"].as_str().unwrap();
    for f in [
        "hats.properties",
        "partition_info.csv",
        "dataset/_metadata",
        "dataset/_common_metadata",
    ] {
        let k = format!("survey/cat/sources/{generation}/{f}");
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    assert!(keys.contains(&"survey/cat/sources/collection.properties".to_string()));
    assert!(
        !keys.iter().any(|k| k.contains("_increments")),
        "merged increments collected: {keys:?}"
    );
    assert_eq!(sql(&env, &uri, q), expect);

    // serve on S3: a real server on port 0.
    let mut server = Proc::spawn(
        &["serve", "--catalog", &uri, "--addr", "127.0.0.1:0"],
        &env,
        None,
    );
    let addr = server.addr_of("serving");
    let body = reqwest::Client::new()
        .post(format!("http://{addr}/v1/sql?format=csv"))
        .body(q.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.kill();
    assert_eq!(
        body.lines().skip(1).map(str::to_string).collect::<Vec<_>>(),
        expect
    );
}

#[tokio::test]
async fn concurrent_ingests_on_s3_commit_each_input_once() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let bucket = Bucket::create(&endpoint, "race").await;
    let env = bucket.env();
    let s = Scratch::new("s3race");
    let (a, b) = (s.path("a"), s.path("b"));
    copy_samples(&a, &["m13.fits", "sip-wcs.fits", "test0.fits"]);
    copy_samples(&b, &["sip-wcs.fits", "test0.fits", "a8280271.fits"]);
    let uri = bucket.uri("cat");
    let spawn = |dir: &std::path::Path| {
        let dir = dir.display().to_string();
        Proc::spawn(
            &["ingest", &dir, "--catalog", &uri, "--chunk-files", "1"],
            &env,
            None,
        )
    };
    // Both run at once; each is killed on drop if the other's assert fails first.
    let (mut pa, mut pb) = (spawn(&a), spawn(&b));
    for p in [&mut pa, &mut pb] {
        let st = p.wait_exit(Duration::from_secs(600));
        assert!(st.success(), "a concurrent ingest failed: {st}");
    }
    let all = s.path("all");
    copy_samples(
        &all,
        &["m13.fits", "sip-wcs.fits", "test0.fits", "a8280271.fits"],
    );
    let local = s.path("local");
    ingest(&[&all], &local).await;
    for q in [
        "SELECT count(*) || ' ' || count(DISTINCT source_id) FROM sources",
        "SELECT count(*) || ' ' || count(DISTINCT exposure_id) FROM exposures",
    ] {
        assert_eq!(sql(&env, &uri, q), query_strings(&local, q).await, "{q}");
    }
}

/// Raw frames in a bucket are ingested straight from S3 (a prefix listed recursively), and an
/// Indexed Job's shards together ingest the whole list exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reads_s3_inputs_and_shards_split_them() {
    use object_store::ObjectStoreExt;
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let bucket = Bucket::create(&endpoint, "raw").await;
    let s = Scratch::new("s3raw");
    let local = s.path("in");
    let names = ["m13.fits", "test0.fits", "thumbnail-image.fit.gz"];
    copy_samples(&local, &names);
    for n in names {
        let bytes = std::fs::read(local.join(n)).unwrap();
        bucket
            .store
            .put(
                &object_store::path::Path::from(format!("raw/night1/{n}")),
                bytes.into(),
            )
            .await
            .unwrap();
    }
    ingest(&[&local], &s.path("clean")).await;
    let env = bucket.env();
    let q = "SELECT count(*) || ' ' || count(DISTINCT source_id) FROM sources";
    let want = query_strings(&s.path("clean"), q).await;
    // The whole prefix in one run.
    let out = astropipe_ok(
        &env,
        &[
            "ingest",
            &bucket.uri("raw/"),
            "--catalog",
            &bucket.uri("cat1"),
        ],
    );
    assert!(out.contains("files: 3 found, 3 ingested"), "{out}");
    assert_eq!(sql(&env, &bucket.uri("cat1"), q), want);
    let uris = sql(
        &env,
        &bucket.uri("cat1"),
        "SELECT DISTINCT file_uri FROM exposures ORDER BY file_uri",
    );
    assert_eq!(uris.len(), 3, "{uris:?}");
    assert!(uris.iter().all(|u| u.starts_with("s3://")), "{uris:?}");
    // Two shards of a list naming the objects one by one.
    let list = s.path("list.txt");
    let lines: Vec<String> = names
        .iter()
        .map(|n| bucket.uri(&format!("raw/night1/{n}")))
        .collect();
    std::fs::write(&list, format!("# tonight\n{}\n", lines.join("\n"))).unwrap();
    for index in ["0", "1"] {
        let out = astropipe(&env)
            .args([
                "ingest",
                "--input-list",
                &list.display().to_string(),
                "--catalog",
                &bucket.uri("cat2"),
                "--shard-count",
                "2",
            ])
            .env("JOB_COMPLETION_INDEX", index)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let want_files = if index == "0" {
            "files: 2 found"
        } else {
            "files: 1 found"
        };
        assert!(text.contains(want_files), "{text}");
    }
    assert_eq!(sql(&env, &bucket.uri("cat2"), q), want);
}
