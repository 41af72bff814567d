"""Writes a HATS collection with LSDB (as astronomers make them: hats-import/LSDB layout, one
row group per file, a margin cache) and answers a cone search on it with LSDB.

Usage: make_lsdb_catalog.py OUT_DIR RA DEC RADIUS_ARCSEC
Prints JSON: rows written, partitions, and the ids LSDB's cone search returns.
"""
import json
import sys

import numpy as np
import pandas as pd
import lsdb


def main():
    out, ra0, dec0, r = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    rng = np.random.default_rng(20261126)
    n = 20_000
    df = pd.DataFrame({
        "id": np.arange(n, dtype=np.int64),
        "ra": rng.uniform(10.0, 12.0, n),
        "dec": rng.uniform(-1.0, 1.0, n),
        "mag": rng.uniform(14.0, 20.0, n),
    })
    cat = lsdb.from_dataframe(df, catalog_name="ext", ra_column="ra", dec_column="dec",
                              lowest_order=2, highest_order=8, partition_rows=3000)
    cat.to_hats(out, catalog_name="ext")
    back = lsdb.open_catalog(out)
    cone = back.cone_search(ra=ra0, dec=dec0, radius_arcsec=r).compute()
    print(json.dumps({
        "rows": n,
        "partitions": len(back.get_healpix_pixels()),
        "cone_ids": sorted(int(i) for i in cone["id"]),
    }))


if __name__ == "__main__":
    main()
