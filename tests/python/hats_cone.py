"""Opens an astropipe catalog with the HATS readers astronomers use and runs a cone search.

Usage: hats_cone.py COLLECTION_DIR RA DEC RADIUS_ARCSEC
Prints JSON: what hats.read_hats saw (rows, partitions, columns, margin) and the source_ids
LSDB's cone search returned, so the Rust test can compare them with astropipe's own answer.
"""
import json
import sys

import hats
import lsdb


def main():
    path, ra, dec, radius = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    cat = hats.read_hats(path)
    primary = cat.main_catalog if hasattr(cat, "main_catalog") else cat
    info = primary.catalog_info
    margin = getattr(cat, "default_margin", None)
    lcat = lsdb.open_catalog(path)
    cone = lcat.cone_search(ra=ra, dec=dec, radius_arcsec=radius).compute()
    full = lcat.compute()
    print(json.dumps({
        "hats_nrows": int(info.total_rows),
        "partitions": len(primary.get_healpix_pixels()),
        "columns": list(lcat.columns),
        "lsdb_rows": int(len(full)),
        "margin": margin,
        "has_margin": lcat.margin is not None,
        "cone_ids": sorted(str(s) for s in cone["source_id"]),
    }))


if __name__ == "__main__":
    main()
