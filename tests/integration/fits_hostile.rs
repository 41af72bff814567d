//! Hostile input: every malformed file gets a clear error naming the file (and the HDU where
//! one applies) and the problem; nothing panics and nothing allocates more than the file
//! justifies. Regression tests for what fuzzing found live here too.

use super::helpers::data_dir;
use astropipe::fits::writer::card;
use astropipe::fits::{FitsError, FitsFile, HeaderValue};

/// A primary header from (key, value) cards, END, padded to 2880 bytes.
fn header(cards: &[(&str, HeaderValue)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in cards {
        out.extend_from_slice(&card(k, v, None));
    }
    let mut end = [b' '; 80];
    end[..3].copy_from_slice(b"END");
    out.extend_from_slice(&end);
    out.resize(out.len().div_ceil(2880) * 2880, b' ');
    out
}

fn int(v: i64) -> HeaderValue {
    HeaderValue::Int(v)
}

fn image_header(bitpix: i64, axes: &[i64]) -> Vec<u8> {
    let mut cards = vec![
        ("SIMPLE", HeaderValue::Bool(true)),
        ("BITPIX", int(bitpix)),
        ("NAXIS", int(axes.len() as i64)),
    ];
    let names = ["NAXIS1", "NAXIS2", "NAXIS3", "NAXIS4"];
    for (i, a) in axes.iter().enumerate() {
        cards.push((names[i], int(*a)));
    }
    header(&cards)
}

/// Opens `bytes` as a file named `name`, and when that works, reads every image HDU.
fn open_and_read(name: &str, bytes: Vec<u8>) -> Result<(), FitsError> {
    let f = FitsFile::from_bytes(name.to_string(), bytes)?;
    for h in &f.hdus {
        if let Some(d) = f.image_dims(h)?
            && d.n_pixels().unwrap_or(0) > 0
        {
            f.read_plane::<f32>(h, 0)?;
        }
    }
    if let Some(e) = f.trailing_error {
        return Err(e);
    }
    Ok(())
}

fn expect_error(name: &str, bytes: Vec<u8>, needles: &[&str]) {
    let e = open_and_read(name, bytes).expect_err(name).to_string();
    assert!(
        e.contains(name),
        "{name}: the error must name the file: {e}"
    );
    for n in needles {
        assert!(
            e.to_lowercase().contains(&n.to_lowercase()),
            "{name}: expected {n:?} in {e:?}"
        );
    }
}

#[test]
fn empty_and_non_fits_files() {
    expect_error("empty.fits", Vec::new(), &["not a FITS file"]);
    expect_error("text.fits", b"hello world".to_vec(), &["not a FITS file"]);
    expect_error(
        "gzip-garbage.fits.gz",
        vec![0x1f, 0x8b, 8, 0, 1, 2, 3],
        &["gzip"],
    );
}

#[test]
fn truncated_data_names_the_hdu_and_the_sizes() {
    let m13 = std::fs::read(data_dir().join("m13.fits")).unwrap();
    expect_error(
        "m13-cut.fits",
        m13[..100_000].to_vec(),
        &["HDU 0", "truncated", "180000"],
    );
    // A multi-extension file cut in its third image: the first HDUs stay readable.
    let test0 = std::fs::read(data_dir().join("test0.fits")).unwrap();
    let f = FitsFile::from_bytes(
        "test0-cut.fits".into(),
        test0[..test0.len() - 4000].to_vec(),
    )
    .unwrap();
    assert!(f.hdus.len() >= 3);
    let e = f.trailing_error.expect("the cut is reported").to_string();
    assert!(
        e.contains("test0-cut.fits") && e.contains("truncated"),
        "{e}"
    );
}

#[test]
fn terabyte_claims_are_refused_without_allocating() {
    // 10^6 x 10^6 doubles = 8 TB declared in a 2880-byte file.
    expect_error(
        "huge.fits",
        image_header(-64, &[1_000_000, 1_000_000]),
        &["truncated"],
    );
    // Dimensions whose product overflows 64 bits.
    let e = open_and_read("overflow.fits", image_header(-64, &[i64::MAX / 2, 4, 4]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("overflow.fits"), "{e}");
}

#[test]
fn bad_structural_keywords() {
    expect_error(
        "negative-naxis.fits",
        image_header(16, &[-5, 10]),
        &["HDU 0"],
    );
    expect_error("bitpix-12.fits", image_header(12, &[10, 10]), &["HDU 0"]);
    let mut naxis_1000 = header(&[
        ("SIMPLE", HeaderValue::Bool(true)),
        ("BITPIX", int(16)),
        ("NAXIS", int(1000)),
    ]);
    naxis_1000.extend(vec![0u8; 2880]);
    expect_error("naxis-1000.fits", naxis_1000, &["HDU 0"]);
}

#[test]
fn missing_end_card_and_non_ascii_headers() {
    let mut no_end = Vec::new();
    for (k, v) in [
        ("SIMPLE", HeaderValue::Bool(true)),
        ("BITPIX", int(8)),
        ("NAXIS", int(0)),
    ] {
        no_end.extend_from_slice(&card(k, &v, None));
    }
    no_end.resize(2880, b' ');
    expect_error("no-end.fits", no_end, &[]);
    let mut bytes = image_header(8, &[4, 4]);
    bytes.extend(vec![7u8; 2880]);
    // Non-ASCII bytes in a comment and in a keyword: tolerated or refused, never a panic.
    bytes[80 * 3 + 40] = 0xC3;
    bytes[80 * 3 + 41] = 0xA9;
    let _ = open_and_read("non-ascii.fits", bytes.clone());
    bytes[2] = 0xFF;
    let _ = open_and_read("non-ascii-key.fits", bytes);
}

#[test]
fn wrong_compression_keywords_and_lying_tables() {
    let good = std::fs::read(data_dir().join("m13_rice.fits")).unwrap();
    let patch = |from: &str, to: &str| {
        let mut b = good.clone();
        let pos = b
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .expect("card present");
        b[pos..pos + to.len()].copy_from_slice(to.as_bytes());
        b
    };
    expect_error(
        "bad-codec.fits",
        patch("ZCMPTYPE= 'RICE_1  '", "ZCMPTYPE= 'FOO_9   '"),
        &["HDU 1", "compression type"],
    );
    expect_error(
        "bad-zbitpix.fits",
        patch(
            "ZBITPIX =                   16",
            "ZBITPIX =                   13",
        ),
        &["HDU 1", "ZBITPIX"],
    );
    expect_error(
        "huge-znaxis.fits",
        patch(
            "ZNAXIS1 =                  300",
            "ZNAXIS1 =            300000000",
        ),
        &["HDU 1"],
    );
    // Descriptors pointing outside the heap.
    let mut lying = good.clone();
    let h = FitsFile::from_bytes("x".into(), good.clone()).unwrap().hdus[1].data_offset as usize;
    lying[h + 4..h + 8].copy_from_slice(&0x7FFF_FFF0u32.to_be_bytes());
    expect_error("lying-heap.fits", lying, &["HDU 1", "heap"]);
    // Corrupt compressed bytes: an error or garbage pixels, never a panic.
    let mut noise = good.clone();
    let start = noise.len() - 40_000;
    for (i, b) in noise[start..start + 30_000].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    let _ = open_and_read("noise.fits", noise);
}

#[test]
fn checksums_verify_and_mismatches_are_detected() {
    let dir = data_dir().join("compressed");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "fits") {
            let f = FitsFile::open(&p).unwrap();
            for h in &f.hdus {
                assert_eq!(
                    f.verify_checksum(h).as_str(),
                    "ok",
                    "{} HDU {}",
                    p.display(),
                    h.index
                );
            }
        }
    }
    let bytes = std::fs::read(dir.join("i16_rice_1.fits")).unwrap();
    let f = FitsFile::from_bytes("x".into(), bytes.clone()).unwrap();
    let data_at = f.hdus[1].data_offset as usize;
    let mut bad_data = bytes.clone();
    bad_data[data_at + 10] ^= 0x01;
    let f = FitsFile::from_bytes("x".into(), bad_data).unwrap();
    assert_eq!(f.verify_checksum(&f.hdus[1]).as_str(), "datasum_mismatch");
    let mut bad_header = bytes.clone();
    let pos = bad_header
        .windows(8)
        .position(|w| w == b"ZCMPTYPE")
        .unwrap();
    bad_header[pos + 60] = b'x'; // inside the comment field
    let f = FitsFile::from_bytes("x".into(), bad_header).unwrap();
    assert_eq!(f.verify_checksum(&f.hdus[1]).as_str(), "checksum_mismatch");
    assert_eq!(f.verify_checksum(&f.hdus[0]).as_str(), "ok");
}

/// Found by the fuzzer (fuzz/fits_reader): a header card whose value is a lone `'` makes
/// fitsrs 0.4.1 panic while slicing the string (card.rs). The reader contains that panic and
/// reports the file as unreadable.
#[test]
fn fuzz_regression_lone_quote_value_in_a_header() {
    let bytes = std::fs::read(data_dir().join("hostile/fitsrs-lone-quote.fits")).unwrap();
    let r = std::panic::catch_unwind(|| open_and_read("lone-quote.fits", bytes));
    let inner = r.expect("no panic escapes the reader");
    // Either refused with a reason naming the file, or (if the bad card is past what is read)
    // read; never a panic.
    if let Err(e) = inner {
        assert!(e.to_string().contains("lone-quote.fits"), "{e}");
    }
}

/// Found by the fuzzer: a compressed image whose table cells are narrower than their type
/// (a zero repeat count) indexed past the cell. Now a clear error.
#[test]
fn fuzz_regression_cells_narrower_than_their_type() {
    let bytes = std::fs::read(data_dir().join("hostile/zero-width-descriptor.fits")).unwrap();
    let e = open_and_read("zero-width.fits", bytes).expect_err("a malformed table is refused");
    assert!(e.to_string().contains("zero-width.fits"), "{e}");
}

/// Found by the fuzzer: a unary code ending on the bit reader's 64th bit overflowed a shift.
/// Reading it now ends in a result or a clear error, never a panic.
#[test]
fn fuzz_regression_unary_code_on_the_64th_bit() {
    let bytes = std::fs::read(data_dir().join("hostile/unary-64th-bit.fits")).unwrap();
    let r = std::panic::catch_unwind(|| open_and_read("unary.fits", bytes));
    if let Err(e) = r.expect("no panic") {
        assert!(e.to_string().contains("unary.fits"), "{e}");
    }
}

/// Found by the fuzzer: corrupt HCOMPRESS coefficients overflowed the inverse transform's
/// sums. Now decoded (to garbage) or refused, never a panic.
#[test]
fn fuzz_regression_hcompress_overflow() {
    let bytes = std::fs::read(data_dir().join("hostile/hcompress-overflow.fits")).unwrap();
    let r = std::panic::catch_unwind(|| open_and_read("hcomp.fits", bytes));
    if let Err(e) = r.expect("no panic") {
        assert!(e.to_string().contains("hcomp.fits"), "{e}");
    }
}
