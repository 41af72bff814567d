"""Drives astropipe's IVOA endpoints with pyvo, as astronomers' scripts do.

Usage: pyvo_client.py BASE_URL RA DEC RADIUS_DEG
Prints JSON with what each call returned (TAP sync and async, overflow, an error,
TAP_SCHEMA, VOSI tables/capabilities/availability, Simple Cone Search), for the Rust test to
compare with plain SQL over HTTP.
"""
import json
import sys
import warnings

import pyvo
from pyvo.dal.exceptions import DALQueryError, DALServiceError


def ids(results, column="source_id"):
    return sorted(str(v) for v in results[column])


def main():
    base, ra, dec, radius = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    out = {}
    tap = pyvo.dal.TAPService(base + "/tap")
    cone = (
        "SELECT TOP 100000 source_id, ra, dec, flux FROM sources "
        f"WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {radius})) = 1"
    )
    r = tap.search(cone)
    out["sync_ids"] = ids(r)
    out["sync_status"] = r.query_status
    field = r.votable.get_first_table().get_field_by_id_or_name("ra")
    out["ra_unit"] = str(field.unit)
    out["ra_ucd"] = field.ucd
    # Lower-case ADQL keywords and functions, the 2.1 coordinate-system-less forms.
    lower = (
        "select top 100000 source_id from sources where "
        f"1 = contains(point(ra, dec), circle(point({ra}, {dec}), {radius}))"
    )
    out["lower_ids"] = ids(tap.search(lower))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        r = tap.search("SELECT source_id FROM sources", maxrec=5)
        out["overflow_rows"] = len(r)
        out["overflow_status"] = r.query_status
    try:
        tap.search("SELECT nope FROM nowhere")
        out["error"] = None
    except (DALQueryError, DALServiceError) as e:
        out["error"] = str(e)
    job = tap.run_async(cone)
    out["async_ids"] = ids(job)
    r = tap.search("SELECT table_name FROM TAP_SCHEMA.tables")
    out["tap_schema_tables"] = sorted(str(t) for t in r["table_name"])
    r = tap.search(
        "SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns WHERE table_name = 'sources'"
    )
    out["tap_schema_columns"] = {
        str(c): [str(u) if u else None, str(q) if q else None]
        for c, u, q in zip(r["column_name"], r["unit"], r["ucd"])
    }
    tables = tap.tables
    out["vosi_tables"] = sorted(t.name for t in tables)
    cols = {c.name: c for c in tables["sources"].columns}
    out["vosi_ra"] = [str(cols["ra"].unit), cols["ra"].ucd]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["available"] = bool(tap.available)
    out["maxrec"] = tap.maxrec
    out["hardlimit"] = tap.hardlimit
    adql = tap.get_tap_capability().get_adql()
    out["geometry_features"] = sorted(
        f.form for f in adql.get_feature_list("ivo://ivoa.net/std/TAPRegExt#features-adqlgeo")
    )
    scs = pyvo.dal.SCSService(base + "/scs?")
    r = scs.search(pos=(ra, dec), radius=radius)
    out["scs_ids"] = ids(r, r.fieldname_with_ucd("ID_MAIN"))
    out["scs_ra_col"] = r.fieldname_with_ucd("POS_EQ_RA_MAIN")
    out["scs_dec_col"] = r.fieldname_with_ucd("POS_EQ_DEC_MAIN")
    dist = [float(d) for d in r["dist_deg"]]
    out["scs_sorted"] = dist == sorted(dist)
    out["scs_dist"] = dist
    print(json.dumps(out))


if __name__ == "__main__":
    main()
