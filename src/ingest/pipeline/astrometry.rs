//! Stage 3 of a plane: pixel → sky with the header's WCS — each source's position (from the
//! windowed centroid) and its error, the exposure's footprint, centre and pixel scale.

use crate::wcs::Wcs;

/// The sky of one exposure, when its header has a usable WCS.
pub struct Sky {
    pub wcs: Option<Wcs>,
    /// `ok`, or why the WCS could not be used.
    pub status: String,
}

impl Sky {
    pub fn from_header(h: &crate::fits::Header) -> Self {
        match Wcs::from_header(h) {
            Ok(w) => Sky {
                wcs: Some(w),
                status: "ok".into(),
            },
            Err(e) => Sky {
                wcs: None,
                status: e.to_string(),
            },
        }
    }

    /// ICRS (ra, dec) of a 0-based pixel of the raw frame.
    pub fn at(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        self.wcs.as_ref().and_then(|w| w.pix2icrs(x, y))
    }

    /// Errors of (ra, dec) in arcseconds from the pixel variances `vx`, `vy` at (x, y).
    pub fn errors(&self, x: f64, y: f64, vx: f64, vy: f64) -> (Option<f64>, Option<f64>) {
        match self.wcs.as_ref().and_then(|w| local_jacobian(w, x, y)) {
            Some(j) => {
                let sra = (j[0][0].powi(2) * vx + j[0][1].powi(2) * vy).sqrt() * 3600.0;
                let sdec = (j[1][0].powi(2) * vx + j[1][1].powi(2) * vy).sqrt() * 3600.0;
                (Some(sra), Some(sdec))
            }
            None => (None, None),
        }
    }

    /// Pixel scale in arcseconds at (x, y) (the square root of the Jacobian's determinant).
    pub fn scale_arcsec(&self, x: f64, y: f64) -> Option<f64> {
        self.wcs
            .as_ref()
            .and_then(|w| local_jacobian(w, x, y))
            .map(|j| (j[0][0] * j[1][1] - j[0][1] * j[1][0]).abs().sqrt() * 3600.0)
    }
}

/// The corners and centre of a frame of `width`×`height` pixels whose first pixel is
/// (`ox`, `oy`) of the raw frame.
pub struct Footprint {
    pub corners: Option<[(f64, f64); 4]>,
    pub centre: Option<(f64, f64)>,
    pub scale_arcsec: Option<f64>,
}

impl Footprint {
    pub fn of(sky: &Sky, width: usize, height: usize, ox: f64, oy: f64) -> Self {
        let (wf, hf) = (width as f64 + ox, height as f64 + oy);
        let corners = [
            (ox, oy),
            (wf - 1.0, oy),
            (wf - 1.0, hf - 1.0),
            (ox, hf - 1.0),
        ];
        let corners = corners
            .iter()
            .map(|&(x, y)| sky.at(x, y))
            .collect::<Option<Vec<_>>>()
            .map(|v| [v[0], v[1], v[2], v[3]]);
        let (cx, cy) = ((wf - 1.0 + ox) / 2.0, (hf - 1.0 + oy) / 2.0);
        Footprint {
            corners,
            centre: sky.at(cx, cy),
            scale_arcsec: sky.scale_arcsec(cx, cy),
        }
    }
}

/// ∂(α cos δ, δ)/∂(x, y) in degrees per pixel, by central differences (includes SIP).
fn local_jacobian(w: &Wcs, x: f64, y: f64) -> Option<[[f64; 2]; 2]> {
    let h = 0.5;
    let (_, dec0) = w.pix2icrs(x, y)?;
    let cosd = dec0.to_radians().cos();
    let d = |a: (f64, f64), b: (f64, f64)| {
        let mut dra = a.0 - b.0;
        if dra > 180.0 {
            dra -= 360.0;
        } else if dra < -180.0 {
            dra += 360.0;
        }
        (dra * cosd / (2.0 * h), (a.1 - b.1) / (2.0 * h))
    };
    let dx = d(w.pix2icrs(x + h, y)?, w.pix2icrs(x - h, y)?);
    let dy = d(w.pix2icrs(x, y + h)?, w.pix2icrs(x, y - h)?);
    Some([[dx.0, dy.0], [dx.1, dy.1]])
}
