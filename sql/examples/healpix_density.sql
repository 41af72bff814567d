-- Source counts per order-10 HEALPix cell (about 3.4 arcmin on a side).
SELECT healpix_nested(10, ra, dec) AS hpx10, count(*) AS n
FROM sources
WHERE ra IS NOT NULL
GROUP BY hpx10
ORDER BY n DESC
LIMIT 10;
