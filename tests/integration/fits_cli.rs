//! `astropipe fits info|stats|pix2sky` run as the real binary, checked against astropy's
//! reference answers.

use super::helpers::data_dir;
use serde_json::Value;
use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_astropipe"))
        .args(args)
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn reference() -> Value {
    serde_json::from_slice(&std::fs::read(data_dir().join("reference.json")).unwrap()).unwrap()
}

#[test]
fn stats_match_astropy_for_every_reference_image() {
    for im in reference()["images"].as_array().unwrap() {
        let file = data_dir().join(im["file"].as_str().unwrap());
        let hdu = im["hdu"].to_string();
        let (ok, out, err) = run(&[
            "fits",
            "stats",
            file.to_str().unwrap(),
            "--hdu",
            &hdu,
            "--json",
        ]);
        assert!(ok, "{err}");
        let got: Value = serde_json::from_str(&out).unwrap();
        let want = &im["stats"];
        for k in ["n", "n_nan", "sha256_f64le"] {
            assert_eq!(got[k], want[k], "{file:?} {k}");
        }
        for k in ["sum", "mean", "median", "min", "max", "std"] {
            let (g, w) = (got[k].as_f64().unwrap(), want[k].as_f64().unwrap());
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{file:?} {k}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn pix2sky_matches_astropy_including_bare_header_files() {
    let r = reference();
    let mut cases: Vec<(String, Option<u64>, Value)> = Vec::new();
    for im in r["images"].as_array().unwrap() {
        if let Some(w) = im.get("wcs").filter(|w| !w.is_null()) {
            cases.push((
                im["file"].as_str().unwrap().to_string(),
                im["hdu"].as_u64(),
                w.clone(),
            ));
        }
    }
    for h in r["headers"].as_array().unwrap() {
        cases.push((
            h["file"].as_str().unwrap().to_string(),
            None,
            h["wcs"].clone(),
        ));
    }
    assert!(cases.len() >= 16);
    for (file, hdu, w) in cases {
        let path = data_dir().join(&file);
        let mut args = vec![
            "fits".to_string(),
            "pix2sky".into(),
            path.to_str().unwrap().into(),
            "--json".into(),
        ];
        if let Some(h) = hdu {
            args.push("--hdu".into());
            args.push(h.to_string());
        }
        for p in w["pixel_0based"].as_array().unwrap() {
            args.push(p[0].to_string());
            args.push(p[1].to_string());
        }
        let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let (ok, out, err) = run(&argv);
        assert!(ok, "{file}: {err}");
        let got: Value = serde_json::from_str(&out).unwrap();
        for (g, want) in got["world_deg"]
            .as_array()
            .unwrap()
            .iter()
            .zip(w["world_deg"].as_array().unwrap())
        {
            match (g[0].as_f64(), want[0].as_f64()) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    let sep = astropipe_udfs::sphere::ang_sep_deg(
                        a,
                        g[1].as_f64().unwrap(),
                        b,
                        want[1].as_f64().unwrap(),
                    );
                    assert!(sep * 3.6e6 < 1.0, "{file}: {g} vs {want}");
                }
                _ => panic!("{file}: {g} vs {want} (on/off the sky differs)"),
            }
        }
    }
}

#[test]
fn info_lists_hdus_compression_wcs_and_checksums() {
    let f = data_dir().join("compressed/f32_subtractive_dither_1_rice_1.fits");
    let (ok, out, _) = run(&["fits", "info", f.to_str().unwrap(), "--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    let h = &v["hdus"][1];
    assert_eq!(h["type"], "COMPRESSED_IMAGE");
    assert_eq!(h["compression"], "RICE_1");
    assert_eq!(h["bitpix"], -32);
    assert_eq!(h["naxes"], serde_json::json!([70, 52]));
    assert_eq!(h["checksum"], "ok");
    let t = data_dir().join("test0.fits");
    let (ok, out, _) = run(&["fits", "info", t.to_str().unwrap()]);
    assert!(ok);
    assert!(
        out.contains("RA---TAN,DEC--TAN") && out.contains("IMAGE"),
        "{out}"
    );
    let (ok, _, err) = run(&["fits", "info", "/no/such/file.fits"]);
    assert!(!ok && err.contains("/no/such/file.fits"), "{err}");
}
