-- How many sources each processed image HDU produced, with its seeing and background.
SELECT e.file_uri, e.hdu, e.n_sources, e.fwhm_arcsec, e.background_level, e.wcs_status
FROM exposures e
ORDER BY e.file_uri, e.hdu;
