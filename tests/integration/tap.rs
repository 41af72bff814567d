//! TAP as data centres check it and astronomers use it: STILTS `taplint` (0 errors, 0
//! warnings, every stage) and `votlint` on what the service writes; uploads through pyvo,
//! astroquery and STILTS (`tapquery`, `tapskymatch`) matched against the truth computed here;
//! BINARY2, ObsCore, SIA and `access_url`; async jobs shared by two `serve` processes on one
//! catalog, surviving `kill -9` of the one running them.

use super::helpers::{
    Proc, Scratch, TestServer, external, run_python, sample_field_catalog, test_python,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// An upload table: `n` positions 1″ north of catalog sources (each must match its source)
/// and a few far from any.
fn upload_votable(sources: &[(String, f64, f64)], n: usize) -> (String, Vec<(i64, f64, f64)>) {
    let mut rows: Vec<(i64, f64, f64)> = sources
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, (_, ra, dec))| (i as i64, *ra, dec + 1.0 / 3600.0))
        .collect();
    for k in 0..5 {
        rows.push((1000 + k, 10.0 + k as f64, -40.0));
    }
    let mut x = String::from(
        "<?xml version=\"1.0\"?>\n<VOTABLE version=\"1.4\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\"><RESOURCE><TABLE name=\"mine\">\
         <FIELD name=\"id\" datatype=\"long\"/><FIELD name=\"ra\" datatype=\"double\" unit=\"deg\" ucd=\"pos.eq.ra;meta.main\"/>\
         <FIELD name=\"dec\" datatype=\"double\" unit=\"deg\" ucd=\"pos.eq.dec;meta.main\"/><DATA><TABLEDATA>\n",
    );
    for (i, ra, dec) in &rows {
        x.push_str(&format!(
            "<TR><TD>{i}</TD><TD>{ra:?}</TD><TD>{dec:?}</TD></TR>\n"
        ));
    }
    x.push_str("</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>\n");
    (x, rows)
}

/// Every (upload id, source_id) pair within 2″, by brute force.
fn truth(upload: &[(i64, f64, f64)], sources: &[(String, f64, f64)]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for (i, ra, dec) in upload {
        for (id, sra, sdec) in sources {
            if astropipe_udfs::sphere::ang_sep_deg(*ra, *dec, *sra, *sdec) <= 2.0 / 3600.0 {
                out.push((*i, id.clone()));
            }
        }
    }
    out.sort();
    out
}

async fn all_sources(server: &TestServer) -> Vec<(String, f64, f64)> {
    server
        .rows("SELECT source_id, ra, dec FROM sources WHERE ra IS NOT NULL ORDER BY source_id")
        .await
        .iter()
        .map(|r| {
            (
                r["source_id"].as_str().unwrap().to_string(),
                r["ra"].as_f64().unwrap(),
                r["dec"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn pairs_of(v: &serde_json::Value) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_str().unwrap().to_string()))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_binary2_obscore_and_sia_through_pyvo_and_astroquery() {
    let Some(python) = test_python() else { return };
    let s = Scratch::new("tap-uploads");
    sample_field_catalog(&s).await;
    let server = TestServer::start(&s.path("cat")).await;
    let sources = all_sources(&server).await;
    let (vot, rows) = upload_votable(&sources, 20);
    let want = truth(&rows, &sources);
    assert!(
        want.len() >= 20,
        "each shifted position matches its source: {want:?}"
    );
    let up = s.path("upload.xml");
    std::fs::write(&up, &vot).unwrap();
    // The join is planned as a pruned sky join, not a nested loop over the catalog.
    let values: Vec<String> = rows
        .iter()
        .map(|(i, a, d)| format!("({i}, {a:?}, {d:?})"))
        .collect();
    let explain = server
        .rows(&format!(
            "EXPLAIN SELECT u.id, s.source_id FROM (VALUES {}) AS u(id, ra, dec) JOIN sources AS s ON cone_contains(s.ra, s.dec, u.ra, u.dec, 2.0/3600)",
            values.join(", ")
        ))
        .await;
    let plan = serde_json::to_string(&explain).unwrap();
    assert!(plan.contains("SkyJoinExec"), "{plan}");

    let base = format!("http://{}", server.addr);
    let out_dir = s.path("py");
    std::fs::create_dir_all(&out_dir).unwrap();
    let (b, u, o) = (
        base.clone(),
        up.display().to_string(),
        out_dir.display().to_string(),
    );
    let got =
        tokio::task::spawn_blocking(move || run_python(&python, "tap_uploads.py", &[&b, &u, &o]))
            .await
            .unwrap();
    assert_eq!(pairs_of(&got["pyvo_sync"]), want, "pyvo, sync upload");
    assert_eq!(got["sep_unit"], "arcsec");
    assert_eq!(got["pyvo_async_phase"], "COMPLETED");
    assert_eq!(pairs_of(&got["pyvo_async"]), want, "pyvo, async upload");
    assert!(
        got["astroquery_error"].is_null(),
        "{}",
        got["astroquery_error"]
    );
    assert_eq!(pairs_of(&got["astroquery"]), want, "astroquery upload");
    // BINARY2 as astropy reads it: the same first row as SQL, the point as a DALI point.
    assert_eq!(got["binary2_rows"], 50);
    let first = &sources[0];
    assert_eq!(got["binary2_first"][0], first.0.as_str());
    assert_eq!(got["binary2_first"][1].as_f64().unwrap(), first.1);
    assert_eq!(got["binary2_pos"][0].as_f64().unwrap(), first.1);
    assert_eq!(got["binary2_pos_xtype"], "point");
    // SIA over ObsCore finds the synthetic field, and its access_url serves the original file.
    let ids: Vec<String> = got["sia_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let synthetic = server
        .rows("SELECT exposure_id FROM exposures WHERE file_uri LIKE '%synthetic.fits'")
        .await;
    assert_eq!(ids, vec![synthetic[0]["exposure_id"].to_string()], "{got}");
    let url = got["sia_urls"][0].as_str().unwrap().to_string();
    let bytes = server
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        bytes.as_ref(),
        std::fs::read(s.path("in/synthetic.fits"))
            .unwrap()
            .as_slice(),
        "access_url serves the original FITS file"
    );
}

/// A server on `catalog` that may fetch upload tables from `other`'s TAP service.
async fn fetching_from(other: &TestServer, catalog: &Path) -> TestServer {
    let mut opts = astropipe::server::ServeOptions::new(
        catalog.display().to_string(),
        "127.0.0.1:0".parse().unwrap(),
    );
    opts.tap.upload_url_prefixes = vec![format!("http://{}/tap/sync", other.addr)];
    TestServer::start_with(opts).await
}

async fn tap_sync(server: &TestServer, params: &[(&str, &str)]) -> (u16, String) {
    let r = server
        .client
        .post(server.url("/tap/sync"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_uploads_only_from_allowed_prefixes() {
    let s = Scratch::new("tap-url-uploads");
    sample_field_catalog(&s).await;
    // A is another TAP service; B may fetch tables from A's /tap/sync only.
    let a = TestServer::start(&s.path("cat")).await;
    let b = fetching_from(&a, &s.path("cat")).await;
    let sources = all_sources(&a).await;
    let want: Vec<String> = sources.iter().take(5).map(|x| x.0.clone()).collect();
    let table = format!(
        "http://{}/tap/sync?REQUEST=doQuery&LANG=ADQL&QUERY={}",
        a.addr,
        url::form_urlencoded::byte_serialize(
            b"SELECT TOP 5 source_id AS id, ra, dec FROM sources WHERE ra IS NOT NULL ORDER BY source_id"
        )
        .collect::<String>()
    );
    let adql = "SELECT u.id, s.source_id FROM TAP_UPLOAD.far AS u JOIN sources AS s ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 0.1/3600)) ORDER BY u.id";
    let upload = format!("far,{table}");
    let (st, body) = tap_sync(
        &b,
        &[
            ("REQUEST", "doQuery"),
            ("LANG", "ADQL"),
            ("QUERY", adql),
            ("UPLOAD", &upload),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    for id in &want {
        assert_eq!(
            body.matches(&format!("<TD>{id}</TD>")).count(),
            2,
            "{id} matched itself: {body}"
        );
    }
    // Declared in B's capabilities, not in A's.
    let caps = |srv: &TestServer| {
        let url = srv.url("/tap/capabilities");
        let c = srv.client.clone();
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert!(
        caps(&b).await.contains("#upload-http\""),
        "B declares URL uploads"
    );
    assert!(!caps(&a).await.contains("#upload-http"), "A does not");
    // A refuses URL uploads; B refuses URLs outside its prefixes (no request is made to them).
    for (srv, url) in [
        (&a, table.clone()),
        (&b, format!("http://{}/v1/sql", a.addr)),
    ] {
        let upload = format!("far,{url}");
        let (st, body) = tap_sync(
            srv,
            &[
                ("REQUEST", "doQuery"),
                ("LANG", "ADQL"),
                ("QUERY", adql),
                ("UPLOAD", &upload),
            ],
        )
        .await;
        assert_eq!(st, 400, "{body}");
        assert!(body.contains("does not fetch tables from"), "{body}");
    }
    // An allowed URL that fails is a clear 400.
    let upload = format!("far,http://{}/tap/sync?QUERY=nonsense", a.addr);
    let (st, body) = tap_sync(
        &b,
        &[
            ("REQUEST", "doQuery"),
            ("LANG", "ADQL"),
            ("QUERY", adql),
            ("UPLOAD", &upload),
        ],
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("UPLOAD far"), "{body}");
}

/// Lines of a STILTS report that start with `E-` (taplint errors) or `W-` (warnings).
fn problems(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter(|l| l.starts_with("E-") || l.starts_with("W-"))
        .collect()
}

fn stilts(bin: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(bin)
        .args(args)
        .output()
        .expect("stilts runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stilts_taplint_votlint_tapquery_and_tapskymatch() {
    let Some(bin) = external("ASTROPIPE_TEST_STILTS") else {
        return;
    };
    let s = Scratch::new("stilts");
    sample_field_catalog(&s).await;
    // Served with URL uploads allowed (from another local service), as TAP 1.1 wants of a
    // service that takes uploads (taplint's E-CAP-MUPM otherwise).
    let other = TestServer::start(&s.path("cat")).await;
    let server = fetching_from(&other, &s.path("cat")).await;
    let tap = format!("http://{}/tap", server.addr);

    // taplint, every stage that applies: no error, no warning.
    let t = tap.clone();
    let b = bin.clone();
    let (_, report) = tokio::task::spawn_blocking(move || {
        stilts(
            &b,
            &[
                "taplint",
                &format!("tapurl={t}"),
                "report=EW",
                "maxrepeat=99",
            ],
        )
    })
    .await
    .unwrap();
    let bad = problems(&report);
    assert!(
        bad.is_empty(),
        "taplint:\n{}\n\nfull report:\n{report}",
        bad.join("\n")
    );
    assert!(
        report.contains("Totals"),
        "taplint ran to the end:\n{report}"
    );
    for line in report
        .lines()
        .skip_while(|l| !l.starts_with("Totals"))
        .take(3)
    {
        eprintln!("taplint {line}");
    }

    // votlint on every kind of VOTable the service writes.
    let sources = all_sources(&server).await;
    let (ra, dec) = (sources[0].1, sources[0].2);
    let q = |adql: &str, extra: &str| {
        format!(
            "{tap}/sync?REQUEST=doQuery&LANG=ADQL&QUERY={}{extra}",
            url::form_urlencoded::byte_serialize(adql.as_bytes()).collect::<String>()
        )
    };
    let base = format!("http://{}", server.addr);
    let docs = [
        q("SELECT TOP 20 * FROM sources", ""),
        q("SELECT TOP 20 * FROM sources", "&RESPONSEFORMAT=votable/b2"),
        q(
            "SELECT TOP 5 POINT('ICRS', ra, dec) AS p, CIRCLE('ICRS', ra, dec, 0.1) AS c, file_uri, header FROM sources JOIN exposures USING (exposure_id)",
            "",
        ),
        q("SELECT * FROM ivoa.ObsCore", ""),
        q("SELECT * FROM ivoa.ObsCore", "&RESPONSEFORMAT=votable/b2"),
        q("SELECT nope FROM nowhere", ""),
        q("SELECT TOP 3 * FROM TAP_SCHEMA.columns", ""),
        format!("{base}/scs?RA={ra}&DEC={dec}&SR=0.01&VERB=3"),
        format!("{base}/scs?RA=1&DEC=95&SR=0.1"),
        format!("{base}/sia/query?POS=CIRCLE%20150%202.2%200.1"),
        format!("{base}/sia/query?POS=BOX"),
    ];
    for (i, url) in docs.iter().enumerate() {
        let body = server
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let f = s.path(&format!("doc{i}.vot"));
        std::fs::write(&f, &body).unwrap();
        let (_, out) = stilts(&bin, &["votlint", &format!("votable={}", f.display())]);
        let bad: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARNING"))
            .collect();
        assert!(bad.is_empty(), "votlint on {url}:\n{out}");
    }
    // An upload through tapquery, and a positional match through tapskymatch.
    let (vot, rows) = upload_votable(&sources, 10);
    let want = truth(&rows, &sources);
    let up = s.path("up.vot");
    std::fs::write(&up, &vot).unwrap();
    let adql = "SELECT u.id, s.source_id FROM TAP_UPLOAD.up1 AS u JOIN sources AS s ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 2.0/3600)) ORDER BY u.id, s.source_id";
    let (ok, out) = stilts(
        &bin,
        &[
            "tapquery",
            &format!("tapurl={tap}"),
            &format!("adql={adql}"),
            "nupload=1",
            &format!("upload1={}", up.display()),
            "upname1=up1",
            "sync=true",
            "ofmt=csv",
            "out=-",
        ],
    );
    assert!(ok, "{out}");
    let got: Vec<(i64, String)> = out
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (a, b) = l.split_once(',').unwrap();
            (a.parse().unwrap(), b.trim_matches('"').to_string())
        })
        .collect();
    assert_eq!(got, want, "tapquery with an upload");
    let (ok, out) = stilts(
        &bin,
        &[
            "tapskymatch",
            &format!("in={}", up.display()),
            "inlon=ra",
            "inlat=dec",
            &format!("tapurl={tap}"),
            "taptable=sources",
            "taplon=ra",
            "taplat=dec",
            "sr=0.000555556",
            "find=all",
            "tapcols=source_id",
            "ofmt=csv",
            "out=-",
        ],
    );
    assert!(ok, "{out}");
    let header: Vec<&str> = out.lines().next().unwrap_or("").split(',').collect();
    let (ci, cs) = (
        header.iter().position(|h| *h == "id").expect("id column"),
        header
            .iter()
            .position(|h| *h == "source_id")
            .expect("source_id column"),
    );
    let mut got: Vec<(i64, String)> = out
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[ci].parse().unwrap(), f[cs].trim_matches('"').to_string())
        })
        .collect();
    got.sort();
    assert_eq!(got, want, "tapskymatch");
}

/// Polls `url` (a job) until its phase is one of `phases`, up to `within`.
async fn wait_phase(c: &reqwest::Client, url: &str, phases: &[&str], within: Duration) -> String {
    let t0 = Instant::now();
    loop {
        if let Ok(r) = c.get(format!("{url}?WAIT=2")).send().await
            && let Ok(doc) = r.text().await
            && phases
                .iter()
                .any(|p| doc.contains(&format!("<uws:phase>{p}</uws:phase>")))
        {
            return doc;
        }
        assert!(t0.elapsed() < within, "{url} never reached {phases:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_jobs_are_shared_by_replicas_and_survive_kill_9() {
    let s = Scratch::new("tap-replicas");
    sample_field_catalog(&s).await;
    let cat = s.path("cat").display().to_string();
    let serve = || {
        let mut p = Proc::spawn(
            &["serve", "--catalog", &cat, "--addr", "127.0.0.1:0"],
            &[],
            None,
        );
        let base = format!("http://{}", p.addr_of("serving"));
        (p, base)
    };
    let (mut a, base_a) = serve();
    let (_b, base_b) = serve();
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let submit = |base: String, query: &'static str, run: bool| {
        let c = c.clone();
        async move {
            let mut pairs = vec![("LANG", "ADQL"), ("QUERY", query)];
            if run {
                pairs.push(("PHASE", "RUN"));
            }
            let body: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            let r = c
                .post(format!("{base}/tap/async"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            loc.rsplit('/').next().unwrap().to_string()
        }
    };
    // Submitted on A, changed, run, polled and fetched on B.
    let id = submit(base_a.clone(), "SELECT count(*) AS n FROM exposures", false).await;
    let r = c
        .post(format!("{base_b}/tap/async/{id}/parameters"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("QUERY=SELECT+count(*)+AS+n+FROM+sources")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let doc = c
        .get(format!("{base_a}/tap/async/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        doc.contains("FROM sources"),
        "parameters changed on B, seen on A: {doc}"
    );
    let r = c
        .post(format!("{base_a}/tap/async/{id}/phase"))
        .body("PHASE=RUN")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    wait_phase(
        &c,
        &format!("{base_b}/tap/async/{id}"),
        &["COMPLETED"],
        Duration::from_secs(60),
    )
    .await;
    let result = c
        .get(format!("{base_b}/tap/async/{id}/results/result"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let n: serde_json::Value = serde_json::from_slice(
        &c.post(format!("{base_b}/v1/sql"))
            .body("SELECT count(*) AS n FROM sources")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let n = n[0]["n"].to_string();
    assert!(result.contains(&format!("<TD>{n}</TD>")), "{result}");
    // PENDING parameters are frozen once it ran.
    let r = c
        .post(format!("{base_b}/tap/async/{id}/parameters"))
        .body("QUERY=SELECT+1")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // Job lists: the caller's, filtered by phase and count.
    let list = c
        .get(format!("{base_b}/tap/async?PHASE=COMPLETED&LAST=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(list.matches("<uws:jobref").count(), 1, "{list}");
    assert!(list.contains(&id), "{list}");

    // A slow job run by A; A is killed (-9) while it executes; B takes it over.
    let slow = submit(
        base_a.clone(),
        "SELECT count(*) AS n FROM generate_series(1, 3000000000) AS t(x) WHERE x % 7 = 3",
        true,
    )
    .await;
    wait_phase(
        &c,
        &format!("{base_b}/tap/async/{slow}"),
        &["EXECUTING"],
        Duration::from_secs(30),
    )
    .await;
    a.kill();
    let doc = wait_phase(
        &c,
        &format!("{base_b}/tap/async/{slow}"),
        &["COMPLETED", "ERROR"],
        Duration::from_secs(240),
    )
    .await;
    if doc.contains("<uws:phase>ERROR</uws:phase>") {
        assert!(doc.contains("<uws:message>"), "an ERROR says why: {doc}");
    } else {
        let r = c
            .get(format!("{base_b}/tap/async/{slow}/results/result"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(r.contains("<TD>428571429</TD>"), "{r}");
    }
    // The jobs live in the catalog's store; nothing is left marked as running.
    assert!(Path::new(&cat).join("_tap/jobs").join(&slow).is_dir());
    let active = Path::new(&cat).join("_tap/active");
    let left = std::fs::read_dir(&active).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "jobs still marked active in {}", active.display());
}
