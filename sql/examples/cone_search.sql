-- Sources within 1 arcminute of (RA, Dec) = (150.0, 2.2), the centre of the demo's synthetic
-- field, nearest first.
SELECT source_id, ra, dec, flux, snr,
       ang_sep_deg(ra, dec, 150.0, 2.2) * 3600 AS sep_arcsec
FROM sources
WHERE cone_contains(ra, dec, 150.0, 2.2, 1.0 / 60)
ORDER BY sep_arcsec;
