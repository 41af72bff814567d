//! `astropipe demo`: the embedded default. Writes the bundled sample FITS files (real images
//! from astropy's test data, see `tests/data/PROVENANCE.tsv`, plus a synthetic frame with a
//! known WCS and injected stars) to `DIR/inputs`, ingests them into the catalog at `DIR`, and
//! prints the example queries of `sql/examples/` ([`crate::examples`]; the synthetic field is
//! centred where their cones look) as curl command lines.

use crate::synthetic::{Frame, FrameSpec};
use std::path::Path;

/// Real sample files compiled into the binary.
pub const SAMPLES: &[(&str, &[u8])] = &[
    ("m13.fits", include_bytes!("../tests/data/m13.fits")),
    ("test0.fits", include_bytes!("../tests/data/test0.fits")),
    ("sip-wcs.fits", include_bytes!("../tests/data/sip-wcs.fits")),
    (
        "thumbnail-image.fit.gz",
        include_bytes!("../tests/data/thumbnail-image.fit.gz"),
    ),
    ("gmos.fits", include_bytes!("../tests/data/gmos.fits")),
];

/// The synthetic demo field (COSMOS-like position).
pub fn demo_frame() -> Frame {
    FrameSpec {
        width: 1024,
        height: 1024,
        n_stars: 300,
        object: "DEMO-FIELD".into(),
        ..FrameSpec::default()
    }
    .generate()
}

/// Writes the inputs; returns the input directory and the synthetic frame.
pub fn write_inputs(dir: &Path) -> std::io::Result<(std::path::PathBuf, Frame)> {
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&inputs)?;
    for (name, bytes) in SAMPLES {
        std::fs::write(inputs.join(name), bytes)?;
    }
    let frame = demo_frame();
    std::fs::write(inputs.join("synthetic_demo.fits"), frame.to_fits())?;
    std::fs::write(inputs.join("synthetic_demo_truth.csv"), frame.truth_csv())?;
    Ok((inputs, frame))
}

/// A curl command line that sends an example to the demo's server: SQL to `/v1/sql` as
/// JSON, ADQL to `/tap/sync` (answered as a VOTable).
pub fn example_curl(addr: &str, e: &crate::examples::Example) -> String {
    match e.lang {
        crate::examples::Lang::Sql => curl(addr, e.text),
        crate::examples::Lang::Adql => format!(
            "curl -s http://{addr}/tap/sync --data-urlencode REQUEST=doQuery --data-urlencode LANG=ADQL \\\n  --data-urlencode QUERY='{}'",
            e.text.replace('\'', "'\\''")
        ),
    }
}

/// A curl command line for a query.
pub fn curl(addr: &str, sql: &str) -> String {
    let body = serde_json::json!({ "sql": sql })
        .to_string()
        .replace('\'', "'\\''");
    format!("curl -s -X POST http://{addr}/v1/sql -H 'Content-Type: application/json' -d '{body}'")
}
