-- The 20 brightest well-measured sources, with an instrumental magnitude (zero point 25).
SELECT source_id, ra, dec, flux, flux_to_mag(flux, 25.0) AS mag_inst, snr, flags
FROM sources
WHERE snr > 20 AND flags & 4 = 0
ORDER BY flux DESC
LIMIT 20;
